/**
 * One `/api/v1/*` route module from source behind the production API router (server/app.ts
 * apiRouter), for scenarios that run without a Remix build: the same Request the server
 * builds, the same Response written back.
 */
import type { ServerBuild } from "@remix-run/node";
import type express from "express";
import { apiRouter } from "../server/app";

export function routeModuleRouter(id: string, routePath: string, module: unknown): express.Router {
  return apiRouter({ routes: { [id]: { id, path: routePath, module } } as unknown as ServerBuild["routes"] });
}
