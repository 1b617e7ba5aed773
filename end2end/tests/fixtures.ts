import { test as base, expect } from "@playwright/test";

// Every browser test also checks the Content-Security-Policy: a page that makes Chromium refuse
// a script, a style, a frame or a fetch fails the test, hydrated and without JavaScript.
export const test = base.extend<{ cspGuard: void }>({
  cspGuard: [
    async ({ page }, use) => {
      const violations: string[] = [];
      page.on("console", (message) => {
        const text = message.text();
        if (/Content Security Policy|Refused to (load|execute|apply|frame|connect)/i.test(text)) {
          violations.push(`${page.url()}: ${text}`);
        }
      });
      await use();
      expect(violations, "the Content-Security-Policy blocked something").toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
