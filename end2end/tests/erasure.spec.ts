import { expect, test } from "./fixtures";
import { ADMIN, ADMIN_PASSWORD, ready } from "./helpers";

// A person asks for the erasure of their account on the account page: the password again (a
// wrong one is refused next to the field), then the page shows when it runs (privacy.yml
// automated_deletion: after the grace period) and lets them cancel it. The administrator, the
// last one, is refused.
test("a person asks for their erasure on the account page, sees when it runs and cancels it", async ({ page, request, javaScriptEnabled }) => {
  const name = `erin${javaScriptEnabled ? "js" : "nojs"}${Date.now() % 100000}`;
  const password = "ErinPassword123!";
  const login = await request.post("/api/v1/auth/login", { data: { username: ADMIN, password: ADMIN_PASSWORD } });
  expect(login.ok()).toBeTruthy();
  const { access_token } = await login.json();
  const created = await request.post("/api/v1/users", {
    headers: { Authorization: `Bearer ${access_token}` },
    data: { username: name, email: `${name}@example.com`, password, roles: ["viewer"] },
  });
  expect(created.status()).toBe(201);

  await page.goto("/login?next=/account");
  await ready(page, javaScriptEnabled);
  const signIn = page.getByTestId("sign-in-form");
  await signIn.getByLabel("Username").fill(name);
  await signIn.getByLabel("Password", { exact: true }).fill(password);
  await signIn.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((url) => url.pathname === "/account");
  await ready(page, javaScriptEnabled);

  const form = page.getByTestId("erasure-form");
  await form.getByLabel("Your password, to confirm").fill("not my password");
  await form.getByRole("button", { name: "Delete my account and data" }).click();
  await expect(page.locator("#erasure-password-errors")).toContainText("is not your password");
  await ready(page, javaScriptEnabled);

  await page.getByTestId("erasure-form").getByLabel("Your password, to confirm").fill(password);
  await page.getByTestId("erasure-form").getByRole("button", { name: "Delete my account and data" }).click();
  const status = page.getByTestId("erasure-status");
  await expect(status).toContainText("will be erased on");
  await expect(status).toContainText("you can still sign in and cancel");
  await ready(page, javaScriptEnabled);

  await page.getByRole("button", { name: "Cancel the erasure" }).click();
  await expect(page.getByTestId("erasure-form")).toBeVisible();
  await expect(page.getByTestId("erasure-status")).toHaveCount(0);

  // Over the API the same request is visible to the administrator, cancelled.
  const list = await request.get("/api/v1/erasures?status=all", { headers: { Authorization: `Bearer ${access_token}` } });
  const rows = (await list.json()) as { username: string; status: string }[];
  expect(rows.find((r) => r.username === name)?.status).toBe("cancelled");
});
