import { createHmac } from "node:crypto";
import nodemailer from "nodemailer";
import { z } from "zod";
import { getEnv } from "../../lib/env.server";
import { emailBody, slackBody, webhookBody, type AlertMessage, type RuleChannel } from "./rules";

/** A channel as the outbox keeps it: no secrets (they stay in the environment). */
export const channelSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("webhook"), url: z.string().url().optional() }),
  z.object({ kind: z.literal("slack"), url: z.string().url().optional() }),
  z.object({ kind: z.literal("email"), to: z.array(z.string().email()).min(1) }),
]);
export type Channel = z.infer<typeof channelSchema>;

export function channelKey(channel: Channel): string {
  if (channel.kind === "email") return `email:${channel.to.join(",")}`;
  return channel.url ? `${channel.kind}:${channel.url}` : channel.kind;
}

/** The channels every alert goes to unless a rule names others: those configured in the environment. */
export function defaultChannels(): Channel[] {
  const env = getEnv();
  const channels: Channel[] = [];
  if (env.TOKENBOARD_ALERT_WEBHOOK_URL) channels.push({ kind: "webhook" });
  if (env.TOKENBOARD_ALERT_SLACK_WEBHOOK_URL) channels.push({ kind: "slack" });
  if (env.TOKENBOARD_SMTP_URL && env.TOKENBOARD_ALERT_EMAIL_TO) channels.push({ kind: "email", to: env.TOKENBOARD_ALERT_EMAIL_TO.split(",").map((a) => a.trim()) });
  return channels;
}

/** The configured channels a rule sends to: all of them, or the one of its kind. */
export function channelsFor(choice: RuleChannel): Channel[] {
  const all = defaultChannels();
  return choice === "all" ? all : all.filter((channel) => channel.kind === choice);
}

export function signature(rawBody: string, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(rawBody).digest("hex")}`;
}

export interface DeliveryResult {
  ok: boolean;
  statusCode?: number;
  error?: string;
}

export interface Attachment {
  filename: string;
  content: Buffer;
  contentType: string;
}

/** Sends one alert to one channel; never throws, never waits longer than `timeoutMs`. Attachments go by email only (other channels get the link). */
export async function sendToChannel(channel: Channel, message: AlertMessage, timeoutMs: number, attachments: Attachment[] = []): Promise<DeliveryResult> {
  const env = getEnv();
  try {
    if (channel.kind === "email") return await sendEmail(channel.to, message, timeoutMs, attachments);
    const url = channel.url ?? (channel.kind === "webhook" ? env.TOKENBOARD_ALERT_WEBHOOK_URL : env.TOKENBOARD_ALERT_SLACK_WEBHOOK_URL);
    if (!url) return { ok: false, error: `no URL for the ${channel.kind} channel (set TOKENBOARD_ALERT_${channel.kind === "webhook" ? "WEBHOOK" : "SLACK_WEBHOOK"}_URL)` };
    const body = JSON.stringify(channel.kind === "webhook" ? webhookBody(message, env.TOKENBOARD_PUBLIC_URL) : slackBody(message, env.TOKENBOARD_PUBLIC_URL));
    const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "tokenboard-alerts" };
    if (channel.kind === "webhook") {
      headers["x-tokenboard-alert-id"] = message.id;
      if (env.TOKENBOARD_ALERT_WEBHOOK_SECRET) headers["x-tokenboard-signature"] = signature(body, env.TOKENBOARD_ALERT_WEBHOOK_SECRET);
    }
    const response = await fetch(url, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    // Only the status matters; the body is drained so the connection is released.
    await response.arrayBuffer().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return { ok: true, statusCode: response.status };
    return { ok: false, statusCode: response.status, error: `HTTP ${response.status}` };
  } catch (error) {
    return { ok: false, error: describeError(error, timeoutMs) };
  }
}

async function sendEmail(to: string[], message: AlertMessage, timeoutMs: number, attachments: Attachment[]): Promise<DeliveryResult> {
  const env = getEnv();
  if (!env.TOKENBOARD_SMTP_URL) return { ok: false, error: "no SMTP server (set TOKENBOARD_SMTP_URL)" };
  const transport = nodemailer.createTransport({ url: env.TOKENBOARD_SMTP_URL, connectionTimeout: timeoutMs, greetingTimeout: timeoutMs, socketTimeout: timeoutMs });
  try {
    const body = emailBody(message, env.TOKENBOARD_PUBLIC_URL);
    const info = await withTimeout(
      transport.sendMail({
        from: env.TOKENBOARD_ALERT_EMAIL_FROM ?? "tokenboard@localhost",
        to,
        subject: body.subject,
        text: body.text,
        html: body.html,
        headers: { "X-Tokenboard-Alert-Id": message.id },
        attachments,
      }),
      timeoutMs,
    );
    return { ok: info.rejected.length === 0, error: info.rejected.length ? `rejected: ${info.rejected.join(", ")}` : undefined };
  } finally {
    transport.close();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describeError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) return `timed out after ${timeoutMs} ms`;
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error instanceof Error ? error.message : String(error)}${cause}`.slice(0, 500);
}
