import { expect, test } from "./fixtures";
import * as path from "node:path";
import { ready, signInAs as signIn } from "./helpers";

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function section(id: number, body: number[] | Buffer): Buffer {
  const b = Buffer.from(body);
  return Buffer.concat([Buffer.from([id, ...leb(b.length)]), b]);
}

/** A valid module exporting add(i32, i32) with a data segment of `dataBytes` bytes, so the upload takes a while. */
function bigAdder(dataBytes: number): Buffer {
  const name = Buffer.from("add");
  const data = Buffer.alloc(dataBytes, 7);
  return Buffer.concat([
    Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]),
    section(1, [1, 0x60, 2, 0x7f, 0x7f, 1, 0x7f]),
    section(3, [1, 0]),
    section(5, [1, 0x00, ...leb(Math.ceil((dataBytes + 1) / 65536))]),
    section(7, [1, name.length, ...name, 0x00, 0]),
    section(10, [1, 7, 0, 0x20, 0, 0x20, 1, 0x6a, 0x0b]),
    section(11, Buffer.concat([Buffer.from([1, 0, 0x41, 0, 0x0b, ...leb(dataBytes)]), data])),
  ]);
}

test("a module is uploaded with a progress bar, analysed, and run from its page", async ({ page, javaScriptEnabled }, info) => {
  const name = `adder-${info.project.name === "hydrated" ? "h" : "n"}-${Date.now().toString(36)}`;
  await signIn(page, javaScriptEnabled, "/modules/upload");
  await ready(page, javaScriptEnabled);
  const form = page.getByTestId("upload-form");
  await form.getByLabel("WebAssembly file").setInputFiles({ name: "adder.wasm", mimeType: "application/wasm", buffer: bigAdder(3 * 1024 * 1024) });
  await form.getByLabel("Name").fill(name);
  await form.getByLabel("Description").fill("adds two numbers");
  if (javaScriptEnabled) {
    // Throttle the upload so the progress bar can be watched.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1024 * 1024 });
    await form.getByRole("button", { name: "Upload and analyse" }).click();
    const progress = page.getByTestId("upload-progress");
    await expect(progress).toBeVisible();
    await expect(page.getByTestId("upload-phase")).toContainText(/Uploading… \d+%|Analysing/);
    await expect.poll(async () => Number(await progress.getAttribute("value"))).toBeGreaterThan(0);
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  } else {
    await form.getByRole("button", { name: "Upload and analyse" }).click();
  }
  await expect(page).toHaveURL(/\/modules\/[0-9a-f-]+\?uploaded=1$/, { timeout: 30_000 });
  await expect(page.getByRole("heading", { level: 1, name })).toBeVisible();
  await expect(page.getByTestId("module-status")).toHaveText("active");
  const analysis = page.getByTestId("analysis");
  await expect(analysis.getByTestId("risk-score")).toHaveText("0/10");
  await expect(analysis).toContainText("No findings");
  await expect(analysis).toContainText("add");

  // Run it.
  await ready(page, javaScriptEnabled);
  const run = page.getByTestId("run-form");
  await run.getByLabel("Function (for a call)").fill("add");
  await run.getByLabel("Arguments").fill("i32:2 i32:3");
  await run.getByRole("button", { name: "Run in the sandbox" }).click();
  if (javaScriptEnabled) {
    await expect(page.getByTestId("run-results")).toHaveText("i32:5");
  }
  await expect(page.getByTestId("runs")).toContainText("results [i32:5]");

  // It is listed.
  await page.goto(`/modules?q=${name}`);
  await expect(page.getByTestId("modules-table")).toContainText(name);
});

test("a module with a blocked import is quarantined and shows why", async ({ page, javaScriptEnabled }, info) => {
  const name = `aborter-${info.project.name === "hydrated" ? "h" : "n"}-${Date.now().toString(36)}`;
  await signIn(page, javaScriptEnabled, "/modules/upload");
  await ready(page, javaScriptEnabled);
  const form = page.getByTestId("upload-form");
  await form.getByLabel("WebAssembly file").setInputFiles(path.join(__dirname, "..", "fixtures", "aborter.wasm"));
  await form.getByLabel("Name").fill(name);
  await form.getByRole("button", { name: "Upload and analyse" }).click();
  await expect(page).toHaveURL(/\/modules\/[0-9a-f-]+\?uploaded=1$/);
  await expect(page.getByTestId("module-status")).toHaveText("quarantined");
  await expect(page.getByTestId("findings")).toContainText("env.abort");
  await expect(page.getByTestId("run-form")).toHaveCount(0);
  await page.goto("/modules/review");
  await expect(page.getByTestId("modules-table")).toContainText(name);
});

test("garbage is refused with the parser's reason", async ({ page, javaScriptEnabled }) => {
  await signIn(page, javaScriptEnabled, "/modules/upload");
  await ready(page, javaScriptEnabled);
  const form = page.getByTestId("upload-form");
  await form.getByLabel("WebAssembly file").setInputFiles({ name: "notes.wasm", mimeType: "application/wasm", buffer: Buffer.from("definitely not wasm") });
  await form.getByRole("button", { name: "Upload and analyse" }).click();
  await expect(page.getByTestId("upload-error")).toContainText("invalid WebAssembly");
});

test("the security dashboard charts the recorded events", async ({ page, javaScriptEnabled }) => {
  await signIn(page, javaScriptEnabled, "/security");
  await expect(page.getByRole("heading", { level: 1, name: "Security" })).toBeVisible();
  for (const event of ["login_failure", "permission_denied", "module_execute", "sandbox_violation"]) {
    await expect(page.getByTestId(`chart-${event}`)).toBeVisible();
  }
  // Earlier tests ran modules, so the executions chart has bars with a height.
  const counters = page.getByTestId("security-counters");
  await expect(counters).toContainText("Module executions");
  const executions = page.getByTestId("chart-module_execute").locator("rect.bar");
  expect(await executions.count()).toBe(24);
  const heights = await executions.evaluateAll((bars) => bars.map((b) => Number(b.getAttribute("height"))));
  expect(Math.max(...heights)).toBeGreaterThan(0);
});
