import { Form, useSearchParams } from "@remix-run/react";

const COMMON_ZONES = [
  "UTC", "America/Los_Angeles", "America/Denver", "America/Chicago", "America/New_York", "America/Sao_Paulo",
  "Europe/London", "Europe/Berlin", "Europe/Helsinki", "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo",
  "Australia/Adelaide", "Australia/Sydney", "Pacific/Auckland", "Pacific/Chatham",
];

export interface RangeValue {
  from: string;
  to: string;
  tz: string;
}

/**
 * The date range and time zone shared by every page. A GET form: submitting it only changes
 * the URL, so the view can be reloaded, shared and navigated back to. Other filters in the
 * URL are kept; the page number is reset.
 */
export function RangeControl({ value, errors }: { value: RangeValue; errors?: Record<string, string> }) {
  const [params] = useSearchParams();
  const kept = [...params.entries()].filter(([key]) => !["from", "to", "tz", "page", "cursor"].includes(key));
  return (
    <Form method="get" className="flex flex-wrap items-end gap-2" aria-label="Date range">
      {kept.map(([key, val]) => (
        <input key={`${key}=${val}`} type="hidden" name={key} value={val} />
      ))}
      <label className="text-xs font-medium text-slate-600">
        From
        <input type="date" name="from" defaultValue={value.from} key={`from-${value.from}`}
          className="mt-0.5 block rounded-md border border-slate-300 px-2 py-1 text-sm" />
      </label>
      <label className="text-xs font-medium text-slate-600">
        To
        <input type="date" name="to" defaultValue={value.to} key={`to-${value.to}`}
          className="mt-0.5 block rounded-md border border-slate-300 px-2 py-1 text-sm" />
      </label>
      <label className="text-xs font-medium text-slate-600">
        Time zone
        <input name="tz" list="tz-options" defaultValue={value.tz} key={`tz-${value.tz}`} spellCheck={false}
          className="mt-0.5 block w-44 rounded-md border border-slate-300 px-2 py-1 text-sm" />
        <datalist id="tz-options">
          {COMMON_ZONES.map((z) => (
            <option key={z} value={z} />
          ))}
        </datalist>
      </label>
      <button type="submit" className="rounded-md bg-slate-800 px-3 py-1.5 text-sm font-medium text-white hover:bg-slate-700">
        Apply
      </button>
      {errors && Object.keys(errors).length ? (
        <p role="alert" className="basis-full text-sm text-rose-600">
          {Object.entries(errors).map(([k, m]) => `${k}: ${m}`).join("; ")}
        </p>
      ) : null}
    </Form>
  );
}
