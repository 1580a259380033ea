import { sql, type RawBuilder } from "kysely";

/**
 * Cost in cents of one token_usage row `u`, with `p` its model's ai_model_pricing row
 * (LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used). The seed app's own
 * calculated_cost_cents wins; where it is null, per-unit pricing (images, audio seconds)
 * applies if the model has it, else input/output prices per 1M tokens. Prices are dollars:
 * dollars per 1M tokens × tokens / 1e6 × 100 cents = tokens × price / 1e4.
 */
export const costCentsSql: RawBuilder<number> = sql<number>`COALESCE(
  u.calculated_cost_cents,
  CASE WHEN p.price_per_unit IS NOT NULL THEN p.price_per_unit * 100 * GREATEST(COALESCE(u.audio_seconds, 0), 1)
       ELSE (COALESCE(u.input_tokens, 0) * p.input_price_per_1m + COALESCE(u.output_tokens, 0) * p.output_price_per_1m) / 10000.0 END,
  0)`;
