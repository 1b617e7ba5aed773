import { expect, type Page } from "@playwright/test";

// .ci/test creates this administrator with the spec's CLI line before starting the server.
export const ADMIN = process.env.E2E_ADMIN_USER ?? "admin";
export const ADMIN_PASSWORD = process.env.E2E_ADMIN_PASSWORD ?? "SecurePassword123!";

/** Waits for hydration when JavaScript runs; the server-rendered page is ready as it is. */
export async function ready(page: Page, javaScriptEnabled: boolean) {
  if (javaScriptEnabled) {
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  }
}

/** Signs in as the administrator through the sign-in form and lands on `next`. */
export async function signInAs(page: Page, javaScriptEnabled: boolean, next: string) {
  await page.goto(`/login?next=${next}`);
  await ready(page, javaScriptEnabled);
  const form = page.getByTestId("sign-in-form");
  await form.getByLabel("Username").fill(ADMIN);
  await form.getByLabel("Password", { exact: true }).fill(ADMIN_PASSWORD);
  await form.getByRole("button", { name: "Sign in" }).click();
  // The sign-in page's own URL ends with `next` too (`/login?next=…`): wait for the page itself.
  await page.waitForURL((url) => url.pathname + url.search === next);
}
