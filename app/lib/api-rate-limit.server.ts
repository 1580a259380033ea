/**
 * Rate limits of the JSON API (issue 23, defect 5), in this process's memory: failed key checks
 * per client address, and requests per key. A limit of 0 is off. Each process counts its own
 * callers; behind a balancer the effective limit is the sum over processes.
 */
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import { getEnv } from "./env.server";
import { jsonError } from "./http.server";

export interface ApiRateLimits {
  /** Requests one key may make per window. */
  keyRequests: number;
  keyWindowSeconds: number;
  /** Wrong keys one client address may send per window before it is refused unchecked. */
  failedKeysPerAddress: number;
  failedKeysWindowSeconds: number;
}

interface Limiters {
  perKey: RateLimiterMemory | null;
  failedKeys: RateLimiterMemory | null;
}

let limiters: Limiters | undefined;

function limitsFromEnv(): ApiRateLimits {
  const env = getEnv();
  return {
    keyRequests: env.TOKENBOARD_API_KEY_RATE_LIMIT,
    keyWindowSeconds: env.TOKENBOARD_API_KEY_RATE_WINDOW,
    failedKeysPerAddress: env.TOKENBOARD_API_FAILED_KEY_LIMIT,
    failedKeysWindowSeconds: env.TOKENBOARD_API_FAILED_KEY_WINDOW,
  };
}

function build(limits: ApiRateLimits): Limiters {
  return {
    perKey: limits.keyRequests > 0 ? new RateLimiterMemory({ points: limits.keyRequests, duration: limits.keyWindowSeconds }) : null,
    failedKeys: limits.failedKeysPerAddress > 0 ? new RateLimiterMemory({ points: limits.failedKeysPerAddress, duration: limits.failedKeysWindowSeconds }) : null,
  };
}

function current(): Limiters {
  limiters ??= build(limitsFromEnv());
  return limiters;
}

/** Replaces the limits (and forgets every count): the environment's values with these on top. For tests and the bench. */
export function configureApiRateLimits(overrides: Partial<ApiRateLimits>): void {
  limiters = build({ ...limitsFromEnv(), ...overrides });
}

function tooManyRequests(message: string, msBeforeNext: number): Response {
  const seconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return jsonError(429, `${message}; retry in ${seconds} s`, { retry_after: seconds }, { "retry-after": String(seconds) });
}

/**
 * Throws a 429 when this address has used up its wrong keys: checked before the key is looked
 * up, so a guesser costs the database nothing. An address that is unknown (a route function
 * called directly, not through the HTTP server) is not limited.
 */
export async function refuseAddressOverFailedKeys(address: string | null): Promise<void> {
  const limiter = current().failedKeys;
  if (!limiter || !address) return;
  const res = await limiter.get(address);
  if (res && res.consumedPoints >= limiter.points) throw tooManyRequests("too many requests with wrong API keys from this address", res.msBeforeNext);
}

export async function countFailedKey(address: string | null): Promise<void> {
  const limiter = current().failedKeys;
  if (limiter && address) await limiter.penalty(address);
}

/** Throws a 429 when this key has made its requests of the window. */
export async function consumeKeyRequest(keyId: string): Promise<void> {
  const limiter = current().perKey;
  if (!limiter) return;
  try {
    await limiter.consume(keyId);
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) throw tooManyRequests("too many requests with this API key", rejection.msBeforeNext);
    throw rejection;
  }
}
