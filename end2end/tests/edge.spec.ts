import { test, expect } from "./fixtures";
import { ADMIN, signInAs } from "./helpers";

// .ci/test trusts 127.0.0.1 as a proxy (rate_limit.yml trusted_proxies), so a request here can
// speak for another address in X-Forwarded-For, and gives the sign-in budget a burst of 10 so six
// quick wrong passwords all reach the password check. Each project blocks its own address.
const ATTACKER = { hydrated: "203.0.113.61", "no-javascript": "203.0.113.62" } as Record<string, string>;

test("a brute-forced address shows as blocked and an admin lifts the block", async ({ page, request, javaScriptEnabled }, info) => {
  const attacker = ATTACKER[info.project.name];
  for (let i = 0; i < 6; i++) {
    const r = await request.post("/api/v1/auth/login", {
      headers: { "x-forwarded-for": attacker },
      data: { username: ADMIN, password: "Wrong-Password-1!" },
    });
    expect(r.status(), `attempt ${i}`).toBe(401);
  }
  const blocked = await request.get("/api/v1/me", { headers: { "x-forwarded-for": attacker } });
  expect(blocked.status()).toBe(403);
  expect((await blocked.json()).error.code).toBe("ip_blocked");

  await signInAs(page, javaScriptEnabled, "/security");
  const blocks = page.getByTestId("blocks");
  const row = blocks.getByRole("row").filter({ hasText: attacker });
  await expect(row).toContainText("brute_force_login");
  await expect(page.getByTestId("triggers")).toContainText(attacker);
  await expect(page.getByTestId("chart-rate_limit_exceeded")).toBeVisible();

  await row.getByRole("button", { name: `Unblock ${attacker}` }).click();
  await expect(blocks.getByRole("row").filter({ hasText: attacker })).toHaveCount(0);
  const lifted = await request.get("/api/v1/me", { headers: { "x-forwarded-for": attacker } });
  expect(lifted.status()).toBe(401);
});
