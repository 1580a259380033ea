import { getInputProps, type FieldMetadata } from "@conform-to/react";
import type { ReactNode } from "react";

/**
 * A labelled input bound to a Conform field: its errors right under it, linked by
 * aria-describedby (getInputProps sets it and aria-invalid) so screen readers read them.
 */
export function FormField({
  label,
  meta,
  type = "text",
  hint,
  ...rest
}: {
  label: string;
  meta: FieldMetadata<string>;
  type?: "text" | "password" | "email";
  hint?: ReactNode;
} & Pick<React.InputHTMLAttributes<HTMLInputElement>, "autoComplete" | "list" | "spellCheck" | "autoFocus">) {
  return (
    <div>
      <label htmlFor={meta.id} className="block text-sm font-medium text-slate-700">{label}</label>
      <input {...getInputProps(meta, { type })} key={meta.key} {...rest}
        className="mt-1 block w-72 max-w-full rounded-md border border-slate-300 px-3 py-1.5 text-sm shadow-sm focus:border-indigo-500 focus:ring-indigo-500" />
      {hint ? <p className="mt-1 text-xs text-slate-500">{hint}</p> : null}
      <p id={meta.errorId} role={meta.errors ? "alert" : undefined} className="mt-1 text-sm text-rose-700">{meta.errors?.join(" ")}</p>
    </div>
  );
}

/** A form-level message (not tied to one field), e.g. "Saved." or a refused reset link. */
export function FormMessage({ id, errors, success }: { id?: string; errors?: string[]; success?: string | null }) {
  if (errors?.length) return <p id={id} role="alert" className="rounded-md bg-rose-50 px-3 py-2 text-sm text-rose-700">{errors.join(" ")}</p>;
  if (success) return <p role="status" className="rounded-md bg-emerald-50 px-3 py-2 text-sm text-emerald-800">{success}</p>;
  return null;
}
