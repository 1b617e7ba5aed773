import { type Page } from "@playwright/test";
import { expect, test } from "./fixtures";

const AREAS = ["Users", "Roles", "Modules", "Scheduler", "Snapshots", "Audit", "Security", "Compliance"];

/** Resolves once the WebAssembly bundle has hydrated the page (it marks <body> when done). */
async function ready(page: Page, javaScriptEnabled: boolean) {
  if (javaScriptEnabled) {
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  }
}

test("the overview shows the platform status and every area", async ({ page, javaScriptEnabled }) => {
  await page.goto("/");
  await ready(page, javaScriptEnabled);
  await expect(page).toHaveTitle("Overview · wasm-as-os");
  await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  const status = page.getByTestId("status");
  await expect(status).toContainText("reachable");
  await expect(status).toContainText("up to date");
  const nav = page.getByRole("navigation", { name: "Main" });
  for (const area of AREAS) {
    await expect(nav.getByRole("link", { name: area })).toBeVisible();
  }
});

test("the sidebar leads to each area's page and marks it current", async ({ page, javaScriptEnabled }) => {
  await page.goto("/");
  await ready(page, javaScriptEnabled);
  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "Scheduler" }).click();
  await expect(page).toHaveURL(/\/scheduler$/);
  await expect(page.getByRole("heading", { level: 1, name: "Scheduler" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Scheduler is not available yet" })).toBeVisible();
  await expect(nav.getByRole("link", { name: "Scheduler" })).toHaveAttribute("aria-current", "page");
  await nav.getByRole("link", { name: "Snapshots" }).click();
  await expect(page).toHaveURL(/\/snapshots$/);
  await expect(page).toHaveTitle("Snapshots · wasm-as-os");
  await expect(nav.getByRole("link", { name: "Snapshots" })).toHaveAttribute("aria-current", "page");
});

test("an unknown address shows the 404 page with status 404", async ({ page }) => {
  const response = await page.goto("/definitely/not/here");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Back to the overview" })).toHaveAttribute("href", "/");
});

test("the navigation collapses in the browser once hydrated", async ({ page, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, "a client-side interaction needs the hydrated app");
  await page.goto("/");
  await ready(page, true);
  const console_ = page.getByTestId("console");
  const toggle = page.getByRole("button", { name: "Collapse navigation" });
  await expect(toggle).toHaveAttribute("aria-expanded", "true");
  await toggle.click();
  await expect(console_).toHaveClass(/sidebar-collapsed/);
  await expect(toggle).toHaveAttribute("aria-expanded", "false");
  await toggle.press("Enter");
  await expect(console_).not.toHaveClass(/sidebar-collapsed/);
});

test("without JavaScript the page is complete server-rendered HTML", async ({ page, javaScriptEnabled }) => {
  test.skip(javaScriptEnabled, "checks the server-rendered page alone");
  await page.goto("/snapshots");
  await expect(page.getByRole("heading", { name: "Snapshots is not available yet" })).toBeVisible();
  await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");
});
