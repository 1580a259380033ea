/**
 * How long one (email, client address) pair waits after failed logins. A pair, not an email:
 * wrong passwords from an attacker's address never keep the real user, elsewhere, out.
 */

/** Failures a pair may make before it has to wait. */
export const FREE_FAILED_LOGINS = 5;
/** The longest wait between two attempts of one pair. */
export const MAX_LOGIN_DELAY_SECONDS = 15 * 60;
/** A pair with no failure for this long starts counting again from zero. */
export const FORGET_FAILURES_MS = 24 * 60 * 60 * 1000;

/** Seconds the pair must wait after its `failures`-th failure: 0, then 1, 2, 4 … capped. */
export function loginDelaySeconds(failures: number): number {
  if (failures < FREE_FAILED_LOGINS) return 0;
  return Math.min(2 ** (failures - FREE_FAILED_LOGINS), MAX_LOGIN_DELAY_SECONDS);
}

/** "1 second", "30 seconds", "15 minutes": for the message a throttled login shows. */
export function describeWait(seconds: number): string {
  if (seconds === 1) return "1 second";
  if (seconds < 120) return `${seconds} seconds`;
  return `${Math.ceil(seconds / 60)} minutes`;
}
