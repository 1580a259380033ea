import type { ActionFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { logout } from "~/lib/auth.server";

export async function loader() {
  // Logging out changes state: only a POST does it.
  return redirect("/");
}

export async function action({ request }: ActionFunctionArgs) {
  const cookie = await logout(request);
  return redirect("/login", { headers: { "Set-Cookie": cookie } });
}
