// Drives `edge serve`'s chat page in Debian's chromium (puppeteer-core, no
// downloaded browser): load it, give the API key when asked, pick the profile
// user, send a message, watch the text stream in, open the "what left this
// device" inspector, then stop a long reply. Prints one JSON line with what
// the page showed and the wire log the page read, for the C++ test to check.
//   [SCREENSHOT=page.png] node chat_page.mjs BASE_URL USER PROMPT [API_KEY]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

const [base, user, prompt, apiKey] = process.argv.slice(2);
const profileDir = mkdtempSync(join(tmpdir(), "specsteer-chromium-"));
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", `--user-data-dir=${profileDir}`],
});
const out = {};
try {
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  const res = await page.goto(base + "/", { waitUntil: "load" });
  out.status = res.status();
  out.content_type = res.headers()["content-type"];
  out.has_input = await page.$("#prompt") !== null;
  out.has_send = await page.$("#send") !== null;
  if (apiKey) {
    await page.waitForSelector("#key-box", { visible: true, timeout: 10000 });
    out.asked_for_key = true;
    await page.type("#api-key", apiKey);
    await page.click("#save-key");
  }
  await page.waitForFunction(() => document.querySelector("#method").options.length > 0, { timeout: 10000 });
  out.users = await page.$$eval("#user option", (os) => os.map((o) => o.value).filter(Boolean));
  if (user) await page.select("#user", user);
  await page.select("#method", "specsteer");
  await page.evaluate(() => {
    window.__updates = 0;
    new MutationObserver(() => window.__updates++).observe(document.getElementById("messages"),
      { subtree: true, characterData: true, childList: true });
  });
  await page.type("#prompt", prompt);
  await page.click("#send");
  await page.waitForSelector(".msg.assistant[data-done='1']", { timeout: 120000 });
  out.reply = await page.$eval(".msg.assistant .text", (e) => e.textContent);
  out.updates = await page.evaluate(() => window.__updates);
  out.stats = await page.$eval(".msg.assistant .stats", (e) => e.textContent);
  await page.click(".msg.assistant .inspect");
  await page.waitForSelector("#wire:not([hidden])", { timeout: 10000 });
  await page.waitForFunction(() => document.querySelectorAll("#wire-tokens .tok").length > 0, { timeout: 10000 });
  out.shown = await page.evaluate(() => ({
    x: document.getElementById("wire-x").textContent,
    tokens: [...document.querySelectorAll("#wire-tokens .tok")].map((s) => ({ text: s.textContent,
      status: s.className.replace("tok ", "") })),
    entries: [...document.querySelectorAll("#wire-entries li")].map((li) => li.textContent),
    raw: document.getElementById("wire-raw").getAttribute("href"),
  }));
  // The wire log as the page's own origin serves it (with the key).
  out.wire = await page.evaluate(async (href, key) => {
    const r = await fetch(href, { headers: key ? { Authorization: "Bearer " + key } : {} });
    return r.json();
  }, out.shown.raw, apiKey || "");
  // Stop: a long reply, stopped after its first pieces.
  await page.select("#method", "lightcosteer");
  await page.$eval("#max-tokens", (e) => { e.value = "400"; });
  await page.type("#prompt", prompt);
  await page.click("#send");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant")[1]?.querySelector(".text")
    .textContent.length > 0, { timeout: 60000 });
  await page.click("#stop");
  await page.waitForSelector(".msg.assistant[data-done='1'] ~ .msg.assistant[data-done='1']", { timeout: 60000 });
  out.stopped_text = await page.evaluate(() => document.querySelectorAll(".msg.assistant")[1].textContent);
  out.send_enabled_after_stop = await page.$eval("#send", (b) => !b.disabled);
  out.page_errors = consoleErrors;
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
} catch (e) {
  out.error = String(e.stack || e);
} finally {
  await browser.close();
  rmSync(profileDir, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
if (out.error) process.exit(1);
