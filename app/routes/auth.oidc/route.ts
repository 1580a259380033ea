import type { LoaderFunctionArgs } from "@remix-run/node";
import { startSsoLogin } from "~/features/sso/service.server";

/** Public: starts single sign-on (404 when it is not configured). redirectTo is kept to this site. */
export async function loader({ request }: LoaderFunctionArgs) {
  return startSsoLogin(request);
}
