import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "./fixtures";
import { ADMIN, ready, signInAs } from "./helpers";

/** A fresh age key pair from the real `age-keygen`: the key file and its public key. */
function ageKey(dir: string): { keyFile: string; recipient: string } {
  const keyFile = join(dir, "key.txt");
  execFileSync("age-keygen", ["-o", keyFile], { stdio: ["ignore", "ignore", "pipe"] });
  const recipient = readFileSync(keyFile, "utf8").match(/public key: (age1[0-9a-z]+)/)?.[1];
  if (!recipient) throw new Error("age-keygen printed no public key");
  return { keyFile, recipient };
}

test("a person exports their data from the account page, watches it being prepared, downloads it once and opens it with age", async ({ page, javaScriptEnabled }) => {
  const dir = mkdtempSync(join(tmpdir(), "wao-export-"));
  const { keyFile, recipient } = ageKey(dir);
  await signInAs(page, javaScriptEnabled, "/account");
  const form = page.getByTestId("export-form");

  // Bad input is refused next to its field: a recipient that is not an age key.
  await form.getByLabel("To my age public key").check();
  await form.getByLabel("age public key", { exact: true }).fill("age1notakey");
  await form.getByRole("button", { name: "Export my data" }).click();
  await expect(page.locator("#export-recipient-errors")).toContainText("is not an age X25519 recipient");
  await ready(page, javaScriptEnabled);

  // Asked for, encrypted to the key.
  await form.getByLabel("Format").selectOption("json");
  await form.getByLabel("To my age public key").check();
  await form.getByLabel("age public key", { exact: true }).fill(recipient);
  await form.getByRole("button", { name: "Export my data" }).click();
  await expect(page).toHaveURL(/\/account\?export=requested/);
  await expect(page.getByRole("status").filter({ hasText: "Your export is being prepared" })).toBeVisible();

  // The newest row moves to ready by itself (polling when hydrated, a reload without JavaScript),
  // its progress bar full.
  const row = page.getByTestId("exports-table").getByRole("row").nth(1);
  if (javaScriptEnabled) {
    await expect(row).toHaveAttribute("data-status", "ready", { timeout: 20_000 });
  } else {
    // Playwright's script switch leaves <noscript> unparsed, so its refresh does not fire here:
    // reload as a person without JavaScript would, until the row is ready.
    await expect
      .poll(async () => {
        await page.goto("/account#exports");
        return row.getAttribute("data-status");
      }, { timeout: 20_000 })
      .toBe("ready");
  }
  await expect(row.locator("progress")).toHaveAttribute("value", "100");
  await expect(row.getByTestId("export-percent")).toHaveText("100%");
  const link = row.getByTestId("export-download");
  const href = (await link.getAttribute("href")) ?? "";
  expect(href).toMatch(/^\/account\/exports\/[0-9a-f-]{36}\/download$/);

  // Downloaded, and opened by the real age command with the key.
  const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
  expect(download.suggestedFilename()).toMatch(new RegExp(`^wasm-as-os-export-${ADMIN}-\\d{8}-\\d{6}\\.json\\.age$`));
  const sealed = join(dir, "export.json.age");
  await download.saveAs(sealed);
  const plain = execFileSync("age", ["-d", "-i", keyFile, sealed]).toString("utf8");
  const doc = JSON.parse(plain);
  expect(doc.export.username).toBe(ADMIN);
  expect(doc.account.username).toBe(ADMIN);
  expect(doc.account.roles).toContain("admin");
  expect(doc.account).not.toHaveProperty("password_hash");
  expect(doc.audit_events.map((e: { event: string }) => e.event)).toContain("data_export");

  // The link works once: a second try lands on the page with the reason.
  await page.goto(href);
  await expect(page).toHaveURL(/export_error=export_downloaded/);
  await expect(page.getByRole("alert").filter({ hasText: "downloaded already" })).toBeVisible();
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId("exports-table").getByRole("row").nth(1)).toHaveAttribute("data-status", "downloaded");
  writeFileSync(join(dir, "done"), "");
});
