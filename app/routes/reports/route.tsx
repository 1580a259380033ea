import type { LoaderFunctionArgs } from "@remix-run/node";
import { requireStaff } from "~/lib/auth.server";
import { ComingSoon } from "~/components/ui/coming-soon";

export async function loader({ request }: LoaderFunctionArgs) {
  await requireStaff(request, "reports:read");
  return null;
}

export default function Page() {
  return <ComingSoon title="reports" />;
}
