/**
 * A small, dependency-free client for tokenboard's POST /api/v1/usage, for the app whose AI
 * calls tokenboard watches. Copy this file into the app (see client/README.md).
 *
 * Retries are safe because every event gets an event_id before the first attempt: a batch
 * that was stored but whose answer got lost is counted as duplicates on the retry, not stored
 * twice.
 */
import type { ActionType } from "../app/domain/action-types";

/** One AI call, with the columns of token_usage. Only the first four are required. */
export interface TokenUsageEvent {
  user_id: string;
  action_type: ActionType;
  model_used: string;
  tokens_used: number;
  input_tokens?: number | null;
  output_tokens?: number | null;
  success?: boolean;
  error_message?: string | null;
  metadata?: Record<string, unknown>;
  /** When the call happened; defaults to the time tokenboard stores it. */
  created_at?: string | Date;
  calculated_cost_cents?: number | null;
  audio_seconds?: number | null;
  audio_duration_formatted?: string | null;
  openai_request_id?: string | null;
  openai_created?: number | null;
  system_fingerprint?: string | null;
  actual_cost_cents?: number | null;
  reconciled_at?: string | Date | null;
  reconciliation_status?: "pending" | "matched" | "discrepancy" | "not_applicable";
  /** The route of the app that made the call, e.g. "/api/viva/chat". */
  route?: string | null;
  /** Idempotency key (≤ 200 characters); a UUIDv7 (newEventId) is assigned when missing. */
  event_id?: string;
}

export interface IngestError {
  /** Index into the array passed to trackTokenUsage. */
  index: number;
  message: string;
}

export interface IngestResult {
  accepted: number;
  duplicates: number;
  errors: IngestError[];
}

export class TokenboardError extends Error {
  constructor(
    message: string,
    /** HTTP status, or 0 when tokenboard could not be reached. */
    readonly status: number,
    /** Per-event errors of a refused batch (422), indexed into the caller's array. */
    readonly errors: IngestError[],
    /** What earlier batches of the same call stored before this one failed. */
    readonly stored: IngestResult,
  ) {
    super(message);
    this.name = "TokenboardError";
  }
}

export interface TokenboardClientOptions {
  /** e.g. "https://tokenboard.example.com" */
  baseUrl: string;
  /** The TOKENBOARD_INGEST_KEY (or another key of scope ingest). */
  ingestKey: string;
  fetch?: typeof fetch;
  /** Further attempts after a 502/503/504 or network failure (default 4). 4xx answers are never retried. */
  retries?: number;
  /** First retry delay; doubles each time, with jitter (default 250 ms). */
  retryDelayMs?: number;
  /** No single wait is longer than this, whatever Retry-After says (default 10 s). */
  maxRetryDelayMs?: number;
  /** Per-request timeout (default 15 s); a timed-out request is retried. */
  timeoutMs?: number;
  /** For tests: how to wait. */
  sleep?: (ms: number) => Promise<void>;
}

export interface TokenboardClient {
  trackTokenUsage(events: TokenUsageEvent | readonly TokenUsageEvent[]): Promise<IngestResult>;
}

/** The server's batch limit. */
export const MAX_EVENTS_PER_REQUEST = 1000;
const RETRYABLE_STATUSES = new Set([502, 503, 504]);

interface WireAnswer {
  accepted?: number;
  duplicates?: number;
  errors?: IngestError[];
  message?: string;
  error?: string;
}

/** The last millisecond an id was made in and its hex prefix (a batch's ids mostly share one). */
const idTime = { ms: -1, prefix: "" };

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, the version, then 74 random bits (taken
 * from a random UUID). Ids made later sort later, so tokenboard's unique index on event_id
 * takes them at its right edge rather than at random pages (random row and event ids together
 * cost the server ~30% more database CPU per stored event, the event ids about half of that;
 * docs/ingest.md).
 */
export function newEventId(): string {
  const now = Date.now();
  if (now !== idTime.ms) {
    const hex = now.toString(16).padStart(12, "0");
    idTime.ms = now;
    idTime.prefix = `${hex.slice(0, 8)}-${hex.slice(8)}-7`;
  }
  // randomUUID(): xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx; from index 15 on, random bits and the variant.
  return idTime.prefix + globalThis.crypto.randomUUID().slice(15);
}

function toWire(event: TokenUsageEvent): Record<string, unknown> {
  const wire: Record<string, unknown> = { ...event, event_id: event.event_id ?? newEventId() };
  if (event.created_at instanceof Date) wire.created_at = event.created_at.toISOString();
  if (event.reconciled_at instanceof Date) wire.reconciled_at = event.reconciled_at.toISOString();
  return wire;
}

async function readAnswer(response: Response): Promise<WireAnswer> {
  try {
    return (await response.json()) as WireAnswer;
  } catch {
    return {};
  }
}

export function createTokenboardClient(options: TokenboardClientOptions): TokenboardClient {
  const endpoint = `${options.baseUrl.replace(/\/+$/, "")}/api/v1/usage`;
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const retries = options.retries ?? 4;
  const baseDelay = options.retryDelayMs ?? 250;
  const maxDelay = options.maxRetryDelayMs ?? 10_000;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));

  function retryDelay(attempt: number, retryAfter: string | null): number {
    const serverAsked = Number(retryAfter) * 1000;
    // Jitter keeps many clients that failed together from retrying together.
    const backoff = baseDelay * 2 ** attempt * (0.5 + Math.random() / 2);
    return Math.min(maxDelay, Number.isFinite(serverAsked) && serverAsked > 0 ? serverAsked : backoff);
  }

  /** One batch, retried on transient failures; throws TokenboardError for anything else. */
  async function sendBatch(batch: Record<string, unknown>[], offset: number, stored: IngestResult): Promise<IngestResult> {
    const body = JSON.stringify({ events: batch });
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await doFetch(endpoint, {
          method: "POST",
          headers: { authorization: `Bearer ${options.ingestKey}`, "content-type": "application/json" },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        if (attempt >= retries) {
          throw new TokenboardError(`tokenboard unreachable after ${attempt + 1} attempts: ${(error as Error).message}`, 0, [], stored);
        }
        await sleep(retryDelay(attempt, null));
        continue;
      }
      const answer = await readAnswer(response);
      if (response.ok) return { accepted: answer.accepted ?? 0, duplicates: answer.duplicates ?? 0, errors: [] };
      if (RETRYABLE_STATUSES.has(response.status) && attempt < retries) {
        await sleep(retryDelay(attempt, response.headers.get("retry-after")));
        continue;
      }
      const errors = (answer.errors ?? []).map((e) => ({ index: e.index + offset, message: e.message }));
      const message = answer.message ?? answer.error ?? `tokenboard answered ${response.status}`;
      throw new TokenboardError(message, response.status, errors, stored);
    }
  }

  return {
    async trackTokenUsage(events) {
      const list = (Array.isArray(events) ? events : [events]) as readonly TokenUsageEvent[];
      const wire = list.map(toWire);
      const total: IngestResult = { accepted: 0, duplicates: 0, errors: [] };
      for (let offset = 0; offset < wire.length; offset += MAX_EVENTS_PER_REQUEST) {
        const result = await sendBatch(wire.slice(offset, offset + MAX_EVENTS_PER_REQUEST), offset, { ...total });
        total.accepted += result.accepted;
        total.duplicates += result.duplicates;
      }
      return total;
    },
  };
}
