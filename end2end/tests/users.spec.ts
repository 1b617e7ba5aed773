import { type Page } from "@playwright/test";
import { expect, test } from "./fixtures";

// .ci/test creates this administrator with the spec's CLI line before starting the server.
const ADMIN = process.env.E2E_ADMIN_USER ?? "admin";
const ADMIN_PASSWORD = process.env.E2E_ADMIN_PASSWORD ?? "SecurePassword123!";

async function ready(page: Page, javaScriptEnabled: boolean) {
  if (javaScriptEnabled) {
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  }
}

async function signIn(page: Page, javaScriptEnabled: boolean, username: string, password: string) {
  await ready(page, javaScriptEnabled);
  const form = page.getByTestId("sign-in-form");
  await form.getByLabel("Username").fill(username);
  await form.getByLabel("Password", { exact: true }).fill(password);
  await form.getByRole("button", { name: "Sign in" }).click();
}

test("an admin signs in, creates a user, assigns a role and signs out", async ({ page, javaScriptEnabled }, info) => {
  const name = `e2e-${info.project.name === "hydrated" ? "h" : "n"}-${Date.now().toString(36)}`;

  // A protected page sends the browser to sign in, and back afterwards.
  await page.goto("/users");
  await expect(page).toHaveURL(/\/login\?next=\/users$/);
  await signIn(page, javaScriptEnabled, ADMIN, "wrong-password");
  await expect(page.getByRole("alert").filter({ hasText: "invalid username or password" })).toBeVisible();
  await signIn(page, javaScriptEnabled, ADMIN, ADMIN_PASSWORD);
  await expect(page).toHaveURL(/\/users$/);
  await expect(page.getByTestId("current-user")).toHaveText(ADMIN);
  await ready(page, javaScriptEnabled);

  // Create a viewer; a weak password is refused next to its field first.
  const create = page.getByTestId("create-user-form");
  await create.getByLabel("Username").fill(name);
  await create.getByLabel("Email").fill(`${name}@company.com`);
  await create.getByLabel("Initial password").fill("weak");
  await create.getByLabel("viewer", { exact: true }).check();
  await create.getByRole("button", { name: "Create user" }).click();
  await expect(page.getByText("Password must be at least 8 characters long")).toBeVisible();
  await ready(page, javaScriptEnabled);
  const again = page.getByTestId("create-user-form");
  await again.getByLabel("Username").fill(name);
  await again.getByLabel("Email").fill(`${name}@company.com`);
  await again.getByLabel("Initial password").fill("E2ePassword123!");
  await again.getByLabel("viewer", { exact: true }).check();
  await again.getByRole("button", { name: "Create user" }).click();
  await expect(page).toHaveURL(/\/users\/[0-9a-f-]+\?created=1$/);
  await expect(page.getByRole("heading", { level: 1, name })).toBeVisible();
  await ready(page, javaScriptEnabled);

  // Assign a second role.
  const roles = page.getByTestId("roles-form");
  await expect(roles.getByLabel("viewer", { exact: true })).toBeChecked();
  await roles.getByLabel("operator", { exact: true }).check();
  await roles.getByRole("button", { name: "Save roles" }).click();
  // Hydrated, the box was checked before the save: wait for the save itself, not the box.
  if (javaScriptEnabled) {
    await expect(page.getByRole("status").filter({ hasText: "Roles saved." })).toBeVisible();
  }
  await expect(page.getByTestId("roles-form").getByLabel("operator", { exact: true })).toBeChecked();
  await page.goto(`/users?q=${name}`);
  await expect(page.getByTestId("users-table")).toContainText("operator, viewer");

  // Sign out: the session ends.
  await ready(page, javaScriptEnabled);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/users");
  await expect(page).toHaveURL(/\/login\?next=\/users$/);
});

test("the roles page lists rbac.yml's roles and creates a custom one", async ({ page, javaScriptEnabled }, info) => {
  const role = `e2e-${info.project.name === "hydrated" ? "h" : "n"}${Date.now().toString(36)}`;
  await page.goto("/login?next=/roles");
  await signIn(page, javaScriptEnabled, ADMIN, ADMIN_PASSWORD);
  await expect(page).toHaveURL(/\/roles$/);
  for (const name of ["admin", "developer", "operator", "viewer"]) {
    await expect(page.locator(`#role-${name}`)).toContainText("rbac.yml");
  }
  await expect(page.locator("#role-admin")).toContainText("modules:*");
  await ready(page, javaScriptEnabled);
  const form = page.getByTestId("create-role-form");
  await form.getByLabel("Name").fill(role);
  await form.getByLabel("Description").fill("Reads the audit log");
  await form.getByLabel(/^Permissions/).fill("audit:read\nwizards:cast");
  await form.getByRole("button", { name: "Create role" }).click();
  await expect(page.getByText("unknown resource \"wizards\"")).toBeVisible();
  await ready(page, javaScriptEnabled);
  const again = page.getByTestId("create-role-form");
  await again.getByLabel("Name").fill(role);
  await again.getByLabel(/^Permissions/).fill("system:audit\nmetrics:read");
  await again.getByRole("button", { name: "Create role" }).click();
  await expect(page.locator(`#role-${role}`)).toContainText("custom");
  await expect(page.locator(`#role-${role}`)).toContainText("metrics:read");
});
