import { DateTime } from "luxon";
import { z } from "zod";
import { isValidTimeZone } from "../../domain/period";

/**
 * Alerts: the pure decisions (crossings, retry schedule, message shapes). No I/O here, so the
 * properties that make an alert fire once per event are unit-tested on their own.
 */

/** Which configured channel a rule's alerts go to. */
export const RULE_CHANNELS = ["all", "webhook", "slack", "email"] as const;
export type RuleChannel = (typeof RULE_CHANNELS)[number];

export type AlertType = "balance.low" | "balance.recovered" | "outlier.flagged" | "spend.threshold" | "ingest.silent" | "drift.detected" | "report.delivered";

/** Where a user's balance stands against their threshold; "below" is strictly under it. */
export type BalanceSide = "above" | "below";

export function balanceSide(balance: number, threshold: number): BalanceSide {
  return balance < threshold ? "below" : "above";
}

/**
 * The alert a new balance raises given the side it was on: one on a downward crossing, one on
 * the way back up, nothing while it stays on the same side. A user never seen starts "above",
 * so a first balance under the threshold is a crossing.
 */
export function balanceCrossing(previous: BalanceSide | undefined, balance: number, threshold: number): { side: BalanceSide; alert: "balance.low" | "balance.recovered" | null } {
  const side = balanceSide(balance, threshold);
  const was = previous ?? "above";
  if (side === was) return { side, alert: null };
  return { side, alert: side === "below" ? "balance.low" : "balance.recovered" };
}

export const RETRY_BASE_MS = 30_000;
export const RETRY_CAP_MS = 60 * 60_000;
/** A delivery is retried for at least this long before it is given up as dead. */
export const RETRY_WINDOW_MS = 24 * 60 * 60_000;

/**
 * Delay before retry number `attempt` (1 = after the first failure): doubling from 30 s up to an
 * hour, with ±20 % jitter so that receivers coming back are not hit by every sender at once.
 */
export function retryDelayMs(attempt: number, random: number = Math.random()): number {
  const exponential = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential * (0.8 + 0.4 * random));
}

/** The body every channel derives from: the Contract's fields first, then the alert's own. */
export interface AlertMessage {
  id: string;
  type: AlertType;
  created_at: string;
  user_id?: string;
  title: string;
  text: string;
  /** Path of the page that explains the alert, e.g. /users/<id>; joined to TOKENBOARD_PUBLIC_URL. */
  path?: string;
  details: Record<string, unknown>;
}

export function pageUrl(publicUrl: string | undefined, path: string | undefined): string | undefined {
  if (!publicUrl || !path) return undefined;
  // Relative to the base, so a dashboard served under a path prefix keeps it.
  return new URL(path.replace(/^\/+/, ""), publicUrl.endsWith("/") ? publicUrl : `${publicUrl}/`).toString();
}

/** The signed webhook's JSON (id, type, created_at, user_id as the Contract names them). */
export function webhookBody(message: AlertMessage, publicUrl?: string): Record<string, unknown> {
  const url = pageUrl(publicUrl, message.path);
  return {
    id: message.id,
    type: message.type,
    created_at: message.created_at,
    ...(message.user_id ? { user_id: message.user_id } : {}),
    title: message.title,
    text: message.text,
    ...(url ? { url } : {}),
    data: message.details,
  };
}

/** Slack incoming-webhook payload: `text` is the notification fallback, blocks carry the layout. */
export function slackBody(message: AlertMessage, publicUrl?: string): Record<string, unknown> {
  const url = pageUrl(publicUrl, message.path);
  const blocks: Record<string, unknown>[] = [
    { type: "header", text: { type: "plain_text", text: message.title.slice(0, 150), emoji: false } },
    { type: "section", text: { type: "mrkdwn", text: escapeSlack(message.text) } },
    { type: "context", elements: [{ type: "mrkdwn", text: `\`${message.type}\` · ${message.created_at} · id ${message.id}` }] },
  ];
  if (url) {
    blocks.push({ type: "actions", elements: [{ type: "button", text: { type: "plain_text", text: "Open in tokenboard" }, url }] });
  }
  return { text: `${message.title}: ${message.text}`, blocks };
}

function escapeSlack(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

export function emailBody(message: AlertMessage, publicUrl?: string): { subject: string; text: string; html: string } {
  const url = pageUrl(publicUrl, message.path);
  const subject = `[tokenboard] ${message.title}`;
  const text = [message.text, "", url ? `Open: ${url}` : undefined, `Alert ${message.type}, id ${message.id}, ${message.created_at}`].filter((line) => line !== undefined).join("\n");
  const html = [
    `<h2>${escapeHtml(message.title)}</h2>`,
    `<p>${escapeHtml(message.text)}</p>`,
    url ? `<p><a href="${escapeHtml(url)}">Open in tokenboard</a></p>` : "",
    `<p style="color:#666;font-size:12px">${escapeHtml(message.type)} · id ${escapeHtml(message.id)} · ${escapeHtml(message.created_at)}</p>`,
  ].join("\n");
  return { subject, text, html };
}

/** A spend rule: tokens over `threshold` in one local day or month of `zone`. */
export const spendRuleSchema = z.object({
  period: z.enum(["day", "month"], { errorMap: () => ({ message: "must be day or month" }) }),
  zone: z.string().trim().refine(isValidTimeZone, "must be an IANA time zone, e.g. Europe/Berlin"),
  threshold: z.coerce.number({ invalid_type_error: "must be a whole number of tokens" }).int("must be a whole number of tokens").min(1, "must be at least 1").max(1e15, "is too large"),
  scope: z.enum(["total", "action_type", "per_user"], { errorMap: () => ({ message: "must be total, action_type or per_user" }) }),
  action_type: z.string().trim().max(100).optional().transform((v) => v || undefined),
}).refine((rule) => rule.scope !== "action_type" || rule.action_type, { message: "is required for the action_type scope", path: ["action_type"] });
export type SpendRule = z.infer<typeof spendRuleSchema>;

/**
 * The local day or month of `zone` that contains `now`: its name (the key a spend alert is
 * deduplicated on) and its instants. Days are 23 or 25 hours long across DST changes.
 */
export function spendPeriod(period: "day" | "month", zone: string, now: Date): { key: string; start: Date; end: Date } {
  const local = DateTime.fromJSDate(now, { zone }).startOf(period);
  return { key: local.toFormat(period === "day" ? "yyyy-MM-dd" : "yyyy-MM"), start: local.toJSDate(), end: local.plus(period === "day" ? { days: 1 } : { months: 1 }).toJSDate() };
}

export const silenceRuleSchema = z.object({
  minutes: z.coerce.number({ invalid_type_error: "must be a whole number of minutes" }).int("must be a whole number of minutes").min(1, "must be at least 1").max(10_080, "must be at most a week"),
});

/** A drift state named by its kinds and action types, not its row counts (they grow while it lasts). */
export function driftStateKey(items: { kind: string; actionType: string | null }[]): string {
  return [...new Set(items.map((i) => `${i.kind}:${i.actionType ?? ""}`))].sort().join("|");
}
