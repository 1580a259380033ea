/** The forms of staff self-service, shared by the pages (client checks) and their actions. */
import { z } from "zod";
import { timeZoneSchema } from "./period";

const newPassword = z
  .string({ required_error: "Enter a new password" })
  .min(12, "must be at least 12 characters")
  .max(200, "must be at most 200 characters");

const withConfirmation = <T extends z.ZodRawShape>(shape: T) =>
  z
    .object({ ...shape, new_password: newPassword, confirm_password: z.string({ required_error: "Repeat the new password" }).max(200) })
    .refine((f) => f.new_password === f.confirm_password, { message: "does not match the new password", path: ["confirm_password"] });

export const passwordChangeSchema = withConfirmation({
  intent: z.literal("password"),
  current_password: z.string({ required_error: "Enter your current password" }).max(1024),
});

export const timezoneChangeSchema = z.object({
  intent: z.literal("timezone"),
  timezone: timeZoneSchema,
});

export const accountFormSchema = z.union([passwordChangeSchema, timezoneChangeSchema]);

export const passwordResetSchema = withConfirmation({});

export const RESET_LINK_UNUSABLE = "This reset link is invalid, already used or expired. Ask an admin for a new one.";
