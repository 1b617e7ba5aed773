import { defineConfig } from "@playwright/test";

// Debian's Chromium: Playwright cannot download its own browser on this machine.
const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const baseURL = process.env.BASE_URL ?? "http://127.0.0.1:3000";

const launchOptions = {
  executablePath: chromium,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
  ],
};

export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  // CI serves the dashboard over HTTPS with a certificate from a CA made for the run.
  use: { baseURL, trace: "off", ignoreHTTPSErrors: true },
  projects: [
    // Every page is tested twice: hydrated by the WebAssembly bundle, and server-rendered only.
    { name: "hydrated", use: { javaScriptEnabled: true, launchOptions } },
    { name: "no-javascript", use: { javaScriptEnabled: false, launchOptions } },
  ],
});
