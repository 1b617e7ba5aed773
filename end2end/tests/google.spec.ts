import { expect, test } from "./fixtures";
import { ready } from "./helpers";

// .ci/test starts end2end/oidc-provider.mjs (a local OpenID provider standing in for Google) and
// the server with Google turned on (auto_provision) and pointed at it; OIDC_CONTROL steers it.
const control = process.env.OIDC_CONTROL ?? "";

async function steer(body: object) {
  const r = await fetch(control, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  expect(r.ok).toBeTruthy();
}

test("Sign in with Google lands signed in, and the account lists the linked identity", async ({ page, javaScriptEnabled }) => {
  await steer({ reset: true });
  await page.goto("/login?next=/account");
  await ready(page, javaScriptEnabled);
  await page.getByRole("button", { name: "Sign in with Google" }).click();
  await page.waitForURL((url) => url.pathname === "/account");
  await ready(page, javaScriptEnabled);
  await expect(page.getByRole("heading", { name: "alice", exact: true })).toBeVisible();
  const linked = page.getByTestId("linked-table");
  await expect(linked).toContainText("Google");
  await expect(linked).toContainText("alice@example.com");
  // Google is the only way this account signs in: unlinking it is refused, next to the list.
  await linked.getByRole("button", { name: "Unlink Google" }).click();
  await expect(page.locator("#linked")).toContainText("only way to sign in");
});

test("a refused Google answer says what happened, with the sign-in form beside it", async ({ page, javaScriptEnabled }) => {
  await steer({ mode: "expired" });
  try {
    await page.goto("/login");
    await ready(page, javaScriptEnabled);
    await page.getByRole("button", { name: "Sign in with Google" }).click();
    await page.waitForURL((url) => url.pathname === "/login" && url.searchParams.get("error") === "id_token_expired");
    await ready(page, javaScriptEnabled);
    await expect(page.getByTestId("sign-in-problem")).toContainText("identity token has expired");
    await expect(page.getByTestId("sign-in-form")).toBeVisible();
  } finally {
    await steer({ mode: "normal" });
  }
});
