import { expect, test } from "./fixtures";
import * as fs from "node:fs";
import { ADMIN, ready, signInAs } from "./helpers";

test("the audit page filters, opens an event and exports the filter", async ({ page, javaScriptEnabled }) => {
  await signInAs(page, javaScriptEnabled, "/audit");
  await expect(page.getByRole("heading", { level: 1, name: "Audit" })).toBeVisible();
  await expect(page.getByTestId("audit-table")).toBeVisible();

  // Filter with the form: the administrator's sign-ins.
  await page.getByLabel("Event", { exact: true }).selectOption("login_success");
  await page.getByLabel("Actor", { exact: true }).fill(ADMIN);
  await page.getByRole("button", { name: "Apply filters" }).click();
  await expect(page).toHaveURL(/[?&]event=login_success/);
  await ready(page, javaScriptEnabled);
  const rows = page.getByTestId("audit-table").locator("tbody tr");
  await expect(rows.first()).toBeVisible();
  const events = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-event")));
  expect(events.length).toBeGreaterThan(0);
  expect(new Set(events)).toEqual(new Set(["login_success"]));

  // A row opens the whole event.
  const first = rows.first();
  await first.getByText("Open").click();
  await expect(first.getByTestId("audit-event-json")).toContainText('"event": "login_success"');
  await expect(first.getByTestId("audit-event-json")).toContainText(`"name": "${ADMIN}"`);

  // The export is the current filter, as CSV.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("export-csv").click()]);
  expect(download.suggestedFilename()).toMatch(/^audit-\d{8}T\d{6}Z\.csv$/);
  const csv = fs.readFileSync(await download.path(), "utf8").split("\r\n").filter((l) => l.length > 0);
  expect(csv[0]).toBe("timestamp,event,outcome,actor_id,actor,ip,user_agent,resource_type,resource_id,details,id");
  expect(csv.length).toBe(events.length + 1);
  for (const line of csv.slice(1)) {
    expect(line).toContain(",login_success,success,");
  }

  // A filter that cannot be read is explained next to its field, not a failure.
  await page.goto("/audit?from=yesterday");
  await expect(page.locator("#from-errors")).toContainText("expected a date");
  await expect(page.getByLabel("From (UTC)")).toHaveAttribute("aria-invalid", "true");
});

test("an empty result says so", async ({ page, javaScriptEnabled }) => {
  await signInAs(page, javaScriptEnabled, "/audit");
  await page.goto("/audit?q=nothing-matches-this-text");
  await expect(page.getByText("No events match")).toBeVisible();
});
