import type { Migration } from "kysely/migration";
import * as m0001 from "./0001_seed_app_tables";
import * as m0002 from "./0002_usage_extensions";
import * as m0003 from "./0003_tokenboard_core";
import * as m0004 from "./0004_outlier_flags";
import * as m0005 from "./0005_rollups";
import * as m0007 from "./0007_ledger_ops";
import * as m0008 from "./0008_user_day_totals";
import * as m0009 from "./0009_user_day_report_measures";
import * as m0010 from "./0010_user_day_total_covering_index";
import * as m0011 from "./0011_ledger_write_function";
import * as m0012 from "./0012_user_usage_month";
import * as m0013 from "./0013_failed_usage_index";
import * as m0014 from "./0014_ledger_write_batch";
import * as m0015 from "./0015_queue_serial_scans";
import * as m0016 from "./0016_per_user_rollups_hot_updates";
import * as m0017 from "./0017_queue_priced_rows";
import * as m0018 from "./0018_user_month_open_days";
import * as m0019 from "./0019_ledger_system_keys";
import * as m0020 from "./0020_login_throttle_password_resets";
import * as m0021 from "./0021_api_key_management";
import * as m0024 from "./0024_billing_tables";
import * as m0026 from "./0026_usage_charging";
import * as m0027 from "./0027_adopted_entries";
import * as m0028 from "./0028_ledger_month_totals";
import * as m0030 from "./0030_alerts";

/** Migrations in order. Static imports so that the server bundle, tsx and vitest all see the same list. */
export const migrations: Record<string, Migration> = {
  "0001_seed_app_tables": m0001,
  "0002_usage_extensions": m0002,
  "0003_tokenboard_core": m0003,
  "0004_outlier_flags": m0004,
  "0005_rollups": m0005,
  "0007_ledger_ops": m0007,
  "0008_user_day_totals": m0008,
  "0009_user_day_report_measures": m0009,
  "0010_user_day_total_covering_index": m0010,
  "0011_ledger_write_function": m0011,
  "0012_user_usage_month": m0012,
  "0013_failed_usage_index": m0013,
  "0014_ledger_write_batch": m0014,
  "0015_queue_serial_scans": m0015,
  "0016_per_user_rollups_hot_updates": m0016,
  "0017_queue_priced_rows": m0017,
  "0018_user_month_open_days": m0018,
  "0019_ledger_system_keys": m0019,
  "0020_login_throttle_password_resets": m0020,
  "0021_api_key_management": m0021,
  "0024_billing_tables": m0024,
  "0026_usage_charging": m0026,
  "0027_adopted_entries": m0027,
  "0028_ledger_month_totals": m0028,
  "0030_alerts": m0030,
};
