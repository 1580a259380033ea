import { sql, type RawBuilder } from "kysely";

/**
 * Cost in cents of one token_usage row `u`, with `p` its model's ai_model_pricing row
 * (LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used). The seed app's own
 * calculated_cost_cents wins; where it is null, per-unit pricing (images, audio seconds)
 * applies if the model has it, else input/output prices per 1M tokens. Prices are dollars:
 * dollars per 1M tokens × tokens / 1e6 × 100 cents = tokens × price / 1e4.
 *
 * The formula is the SQL function tokenboard.usage_cost_cents (migration 0017), which the rollup
 * queue's trigger prices queued rows with too; the planner inlines it.
 */
export const costCentsSql: RawBuilder<number> = sql<number>`tokenboard.usage_cost_cents(u.calculated_cost_cents, u.audio_seconds, u.input_tokens, u.output_tokens,
  p.price_per_unit, p.input_price_per_1m, p.output_price_per_1m)`;
