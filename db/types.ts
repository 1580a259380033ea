import type { ColumnType, Generated, Insertable, Selectable } from "kysely";

/** A timestamptz: read as Date, written as Date or ISO string. */
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type DefaultedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** numeric is parsed to a JS number (see db/database.ts); it is written as number or string. */
type Numeric = ColumnType<number, number | string, number | string>;
type Json = ColumnType<unknown, string | undefined, string>;

export interface TokenUsageTable {
  id: Generated<string>;
  user_id: string;
  action_type: string;
  model_used: string;
  tokens_used: Generated<number>;
  input_tokens: ColumnType<number | null, number | null | undefined, number | null>;
  output_tokens: ColumnType<number | null, number | null | undefined, number | null>;
  success: Generated<boolean>;
  error_message: string | null;
  metadata: Json;
  created_at: DefaultedTimestamp;
  calculated_cost_cents: Numeric | null;
  audio_seconds: Numeric | null;
  audio_duration_formatted: string | null;
  openai_request_id: string | null;
  openai_created: number | null;
  system_fingerprint: string | null;
  actual_cost_cents: Numeric | null;
  reconciled_at: Timestamp | null;
  reconciliation_status: Generated<string | null>;
  route: string | null;
  event_id: string | null;
}

export interface AiActionTokenOverridesTable {
  action_type: string;
  token_value: number;
  updated_at: DefaultedTimestamp | null;
}

export interface AiModelPricingTable {
  id: Generated<string>;
  model_name: string;
  provider: Generated<string>;
  model_family: string | null;
  input_price_per_1m: Numeric;
  output_price_per_1m: Numeric;
  price_per_unit: Numeric | null;
  unit_type: string | null;
  is_active: Generated<boolean | null>;
  effective_date: DefaultedTimestamp | null;
  notes: string | null;
  created_at: DefaultedTimestamp | null;
  updated_at: DefaultedTimestamp | null;
}

export type StaffRole = "admin" | "support" | "analyst";

export interface StaffUsersTable {
  id: Generated<string>;
  email: string;
  name: Generated<string>;
  password_hash: string;
  role: StaffRole;
  timezone: Generated<string>;
  disabled_at: Timestamp | null;
  failed_logins: Generated<number>;
  locked_until: Timestamp | null;
  created_at: DefaultedTimestamp;
  updated_at: DefaultedTimestamp;
}

export interface StaffSessionsTable {
  id: string;
  staff_id: string;
  created_at: DefaultedTimestamp;
  expires_at: Timestamp;
  ip: string | null;
  user_agent: string | null;
}

export interface LoginAttemptsTable {
  id: Generated<number>;
  email: string;
  ip: string | null;
  succeeded: boolean;
  attempted_at: DefaultedTimestamp;
}

/** Failed logins of one (lower-cased email, client address) pair; see app/domain/login-throttle.ts. */
export interface LoginThrottlesTable {
  email: string;
  ip: string;
  failures: number;
  last_failure_at: Timestamp;
  blocked_until: Timestamp | null;
}

/** Admin-issued one-time password reset links (sha256 of the token). */
export interface StaffPasswordResetsTable {
  token_hash: string;
  staff_id: string;
  created_by: string | null;
  created_at: DefaultedTimestamp;
  expires_at: Timestamp;
  used_at: Timestamp | null;
}

export type ApiKeyScope = "ingest" | "ledger" | "read";

export interface ApiKeysTable {
  id: Generated<string>;
  name: string;
  scope: ApiKeyScope;
  key_hash: string;
  created_at: DefaultedTimestamp;
  revoked_at: Timestamp | null;
  /** The key's first characters, shown to tell keys apart; null for keys from the environment. */
  prefix: string | null;
  created_by: string | null;
  last_used_at: Timestamp | null;
  expires_at: Timestamp | null;
  /** The key a rotation made to take this one's place. */
  replaced_by: string | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: DefaultedTimestamp;
  actor_id: string | null;
  actor_label: string;
  action: string;
  target_type: string;
  target_id: string | null;
  before: Json | null;
  after: Json | null;
  reason: string | null;
  ip: string | null;
}

export interface OverrideHistoryTable {
  id: Generated<number>;
  action_type: string;
  old_value: number | null;
  new_value: number | null;
  changed_by: string | null;
  changed_by_label: string;
  reason: string;
  changed_at: DefaultedTimestamp;
}

export interface AppUsersTable {
  user_id: string;
  email: string | null;
  display_name: string | null;
  created_at: DefaultedTimestamp;
}

export interface TokenBalancesTable {
  user_id: string;
  balance: number;
  updated_at: DefaultedTimestamp;
}

export type LedgerKind = "grant" | "deduct" | "usage" | "purchase" | "expiry" | "correction";

export interface LedgerEntriesTable {
  id: Generated<number>;
  user_id: string;
  kind: LedgerKind;
  amount: number;
  balance_after: number;
  reason: string | null;
  actor_id: string | null;
  actor_label: string;
  /** The caller's key; null on the system's own entries (expiry, usage), which are unique by their grant or usage row. */
  idempotency_key: string | null;
  expires_at: Timestamp | null;
  remaining: number | null;
  forced: Generated<boolean>;
  usage_id: string | null;
  expired_entry_id: number | null;
  /** Money received, on purchases. */
  amount_paid_cents: number | null;
  currency: string | null;
  /** The row an adopted entry came from, e.g. 'token_transactions:<id>'; unique. */
  source_ref: string | null;
  /** Who consumed a charge that another balance (a shared pool's owner) paid. */
  consumer_id: string | null;
  created_at: DefaultedTimestamp;
}

/** Σ of ledger amounts and entries per (UTC month, owner, kind), kept by triggers (migration 0028). */
export interface LedgerMonthTotalsTable {
  month: string;
  user_id: string;
  kind: LedgerKind;
  amount: number;
  entries: number;
}

export interface SettingsTable {
  key: string;
  value: Json;
  updated_at: DefaultedTimestamp;
}

export type OutlierStatus = "open" | "acknowledged";

export interface OutlierFlagsTable {
  id: Generated<number>;
  rule: string;
  dedupe_key: string;
  action_type: string | null;
  route: string | null;
  user_id: string | null;
  usage_id: string | null;
  day: ColumnType<string | null, string | null | undefined, string | null>;
  observed: Numeric | null;
  expected_low: Numeric | null;
  expected_high: Numeric | null;
  message: string;
  details: Json;
  occurred_at: Timestamp;
  detected_at: DefaultedTimestamp;
  status: Generated<OutlierStatus>;
  acknowledged_by: string | null;
  acknowledged_at: Timestamp | null;
  ack_note: string | null;
}

export interface UsageRollupQueueTable {
  id: Generated<number>;
  sign: number;
  created_at: Timestamp;
  user_id: string;
  action_type: string;
  route: string | null;
  model_used: string;
  success: boolean;
  tokens_used: number;
  input_tokens: number | null;
  output_tokens: number | null;
  /** Priced by the trigger when the row was queued (migration 0017). */
  cost_cents: Numeric;
  /** The usage row queued (migration 0026); null on rows queued before it, which are not charged. */
  usage_id: string | null;
}

/** What consumed queue batches owe, staged per payer, consumer and kind until applied to the ledger (migration 0026). */
export interface PendingChargesTable {
  id: Generated<number>;
  payer_id: string;
  consumer_id: string;
  kind: "usage" | "correction";
  /** Signed as the ledger entry will be: a charge negative, a refund positive. */
  amount: number;
  rows: number;
  usage_ids: string[];
  first_at: Timestamp;
  last_at: Timestamp;
  first_queue_id: number;
  last_queue_id: number;
  staged_at: DefaultedTimestamp;
}

/** The usage rows a charge or correction entry covers (migration 0026). */
export interface UsageChargeTracesTable {
  entry_id: number;
  consumer_id: string;
  usage_ids: string[];
  first_at: Timestamp;
  last_at: Timestamp;
  first_queue_id: number;
  last_queue_id: number;
}

interface UsageRollupMeasures {
  action_type: string;
  route: string | null;
  model: string;
  calls: number;
  failures: number;
  tokens: number;
  input_tokens: number;
  output_tokens: number;
  cost_cents: Numeric;
  below_range: number;
  above_range: number;
  max_tokens: number | null;
}

export interface UsageRollup15mTable extends UsageRollupMeasures {
  bucket: Timestamp;
}

export interface UsageRollupDayTable extends UsageRollupMeasures {
  day: string;
}

export interface UsageHist15mTable {
  bucket: Timestamp;
  action_type: string;
  bin: number;
  calls: number;
}

export interface UsageHistDayTable {
  day: string;
  action_type: string;
  bin: number;
  calls: number;
}

export interface UserUsageDayTable {
  day: string;
  user_id: string;
  action_type: string;
  calls: number;
  failures: number;
  tokens: number;
  cost_cents: Numeric;
}

export interface UserUsageDayTotalTable {
  day: string;
  user_id: string;
  calls: number;
  failures: number;
  tokens: number;
  cost_cents: Numeric;
}

/** user_usage_day summed per UTC month (first day of the month), migration 0012. */
export interface UserUsageMonthTable extends Omit<UserUsageDayTable, "day"> {
  month: string;
  below_range: number;
  above_range: number;
  first_at: Date | null;
  last_at: Date | null;
}

export interface UserUsageMonthTotalTable extends Omit<UserUsageDayTotalTable, "day"> {
  month: string;
}

/** One row: the month rollups hold the days before open_from (migration 0018). */
export interface UserMonthHorizonTable {
  single: Generated<boolean>;
  open_from: string;
}

/**
 * Every table tokenboard reads or writes. Seed-app tables live in `public`, tokenboard's in
 * `tokenboard`; the connection's search_path makes both reachable unqualified.
 */
export interface Database {
  token_usage: TokenUsageTable;
  ai_action_token_overrides: AiActionTokenOverridesTable;
  ai_model_pricing: AiModelPricingTable;
  staff_users: StaffUsersTable;
  staff_sessions: StaffSessionsTable;
  login_attempts: LoginAttemptsTable;
  login_throttles: LoginThrottlesTable;
  staff_password_resets: StaffPasswordResetsTable;
  api_keys: ApiKeysTable;
  audit_log: AuditLogTable;
  override_history: OverrideHistoryTable;
  app_users: AppUsersTable;
  token_balances: TokenBalancesTable;
  ledger_entries: LedgerEntriesTable;
  ledger_month_totals: LedgerMonthTotalsTable;
  settings: SettingsTable;
  outlier_flags: OutlierFlagsTable;
  usage_rollup_queue: UsageRollupQueueTable;
  pending_charges: PendingChargesTable;
  usage_charge_traces: UsageChargeTracesTable;
  usage_rollup_15m: UsageRollup15mTable;
  usage_rollup_day: UsageRollupDayTable;
  usage_hist_15m: UsageHist15mTable;
  usage_hist_day: UsageHistDayTable;
  user_usage_day: UserUsageDayTable;
  user_usage_day_total: UserUsageDayTotalTable;
  user_usage_month: UserUsageMonthTable;
  user_usage_month_total: UserUsageMonthTotalTable;
  user_month_horizon: UserMonthHorizonTable;
  token_transactions: TokenTransactionsTable;
  households: HouseholdsTable;
  household_members: HouseholdMembersTable;
  alert_outbox: AlertOutboxTable;
  alert_balance_state: AlertBalanceStateTable;
  alert_balance_thresholds: AlertBalanceThresholdsTable;
  alert_rules: AlertRulesTable;
  report_subscriptions: ReportSubscriptionsTable;
  report_deliveries: ReportDeliveriesTable;
}

export interface ReportSubscriptionsTable {
  id: Generated<string>;
  name: string;
  zone: string;
  channel: Generated<"all" | "webhook" | "slack" | "email">;
  created_by: string | null;
  created_at: DefaultedTimestamp;
}

/** A monthly report as it was delivered: the CSV's bytes and checksum. */
export interface ReportDeliveriesTable {
  id: Generated<string>;
  subscription_id: string;
  /** yyyy-MM, in `zone`. */
  month: string;
  zone: string;
  csv: Buffer;
  bytes: number;
  sha256: string;
  created_at: DefaultedTimestamp;
}

export type AlertType = "balance.low" | "balance.recovered" | "outlier.flagged" | "spend.threshold" | "ingest.silent" | "drift.detected" | "report.delivered";
export type AlertDeliveryStatus = "pending" | "sent" | "failed" | "dead";

/** One alert to one channel; its id is the alert id every attempt sends (receivers dedupe on it). */
export interface AlertOutboxTable {
  delivery_id: Generated<number>;
  id: string;
  /** Which channel this row goes to ("webhook", "slack", "email:<address>"); one row per alert and channel. */
  channel_key: string;
  type: AlertType;
  created_at: DefaultedTimestamp;
  user_id: string | null;
  payload: Json;
  channel: Json;
  status: Generated<AlertDeliveryStatus>;
  attempts: Generated<number>;
  next_attempt_at: DefaultedTimestamp;
  last_error: string | null;
  last_status_code: number | null;
  sent_at: Timestamp | null;
  /** Retries stop after this (at least 24 h after the alert); a resend moves it. */
  dead_after: DefaultedTimestamp;
  /** Names the event (e.g. a spend period and threshold) so it is queued once however often it is seen. */
  dedupe_key: string | null;
}

export interface AlertBalanceStateTable {
  user_id: string;
  below: boolean;
  threshold: number;
  balance: number;
  last_entry_id: number;
  updated_at: DefaultedTimestamp;
}

/** A configurable alert rule; `params` is parsed by app/features/alerts/rules.ts (spendRuleSchema, silenceRuleSchema). */
export interface AlertRulesTable {
  id: Generated<string>;
  type: "spend.threshold" | "ingest.silent";
  name: string;
  params: Json;
  /** Which configured channel the rule's alerts go to ("all": every one). */
  channel: Generated<"all" | "webhook" | "slack" | "email">;
  enabled: Generated<boolean>;
  muted_until: Timestamp | null;
  created_by: string | null;
  created_at: DefaultedTimestamp;
  updated_at: DefaultedTimestamp;
}

export interface AlertBalanceThresholdsTable {
  user_id: string;
  threshold: number;
  updated_at: DefaultedTimestamp;
}

export type TokenTransactionKind =
  | "chat" | "refinement" | "blueprint" | "audio_generation" | "transcription" | "image_generation" | "assessment"
  | "manual_adjustment" | "subscription_grant" | "renewal_grant" | "pack_purchase" | "admin_grant" | "admin_deduct"
  | "trial_grant" | "token_pack_purchase";

/** The seed app's billing rows (public.token_transactions); adopted into the ledger once. */
export interface TokenTransactionsTable {
  id: Generated<string>;
  user_id: string;
  action_type: TokenTransactionKind;
  tokens_used: number;
  tokens_remaining: number;
  estimated_cost_usd: string | null;
  openai_model: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  metadata: Json;
  created_at: DefaultedTimestamp;
  amount_paid_cents: number | null;
  currency: ColumnType<string | null, string | null | undefined, string | null>;
  stripe_payment_intent_id: string | null;
  stripe_session_id: string | null;
  subscription_id: string | null;
  token_pack_id: string | null;
  notes: string | null;
  created_by: string | null;
  expires_at: Timestamp | null;
}

export interface HouseholdsTable {
  id: Generated<string>;
  name: ColumnType<string, string | undefined, string>;
  admin_user_id: string;
  stripe_customer_id: string | null;
  stripe_subscription_id: string | null;
  subscription_status: ColumnType<string | null, string | null | undefined, string | null>;
  plan_type: ColumnType<string | null, string | null | undefined, string | null>;
  max_members: ColumnType<number | null, number | null | undefined, number | null>;
  shared_tokens_enabled: ColumnType<boolean | null, boolean | null | undefined, boolean | null>;
  created_at: DefaultedTimestamp;
  updated_at: DefaultedTimestamp;
}

export interface HouseholdMembersTable {
  id: Generated<string>;
  household_id: string;
  user_id: string;
  role: ColumnType<string | null, string | null | undefined, string | null>;
  allow_shared_tokens: ColumnType<boolean | null, boolean | null | undefined, boolean | null>;
  invited_by: string | null;
  invited_at: DefaultedTimestamp;
  accepted_at: Timestamp | null;
  status: ColumnType<string | null, string | null | undefined, string | null>;
  joined_at: DefaultedTimestamp;
  removed_at: Timestamp | null;
  is_addon_seat: ColumnType<boolean | null, boolean | null | undefined, boolean | null>;
  seat_number: number | null;
  stripe_subscription_item_id: string | null;
}

export type TokenUsageRow = Selectable<TokenUsageTable>;
export type NewTokenUsage = Insertable<TokenUsageTable>;
export type StaffUser = Selectable<StaffUsersTable>;
export type LedgerEntry = Selectable<LedgerEntriesTable>;
export type AuditEntry = Selectable<AuditLogTable>;
