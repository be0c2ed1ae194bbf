/**
 * Shared console UI: the page layout (navigation, account picker, flash messages), small helpers,
 * and server-rendered SVG charts (no client script; the CSP allows none).
 */
import type { Child, FC } from "hono/jsx";
import type { Account } from "../../store/accounts.ts";

/** The console's pages, in navigation order. */
export const NAV = [
  ["setup", "Guided setup"],
  ["connections", "Connections"],
  ["mapping", "Mapping"],
  ["filters", "Filters"],
  ["duplicates", "Duplicates"],
  ["activity", "Activity"],
  ["problems", "Problems"],
  ["backfill", "Backfill"],
  ["usage", "Usage"],
  ["report", "Report"],
  ["notifications", "Notifications"],
  ["automations", "Automations"],
] as const;
export type PageKey = (typeof NAV)[number][0];

/** A link to a console page for the current account. */
export function href(
  page: string,
  account: string | null,
  params: Record<string, string | number | null | undefined> = {},
): string {
  const q = new URLSearchParams();
  if (account) q.set("account", account);
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const qs = q.toString();
  return `/console/${page}${qs ? `?${qs}` : ""}`;
}

export const fmtTime = (ms: number | null | undefined): string =>
  ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "—";
export const fmtInt = (n: number): string => n.toLocaleString("en-US");
export function fmtMoney(minor: number, currency: string | null): string {
  const cur = currency ?? "USD";
  try {
    const digits =
      new Intl.NumberFormat("en", { style: "currency", currency: cur }).resolvedOptions().maximumFractionDigits ?? 2;
    return new Intl.NumberFormat("en-US", { style: "currency", currency: cur }).format(minor / 10 ** digits);
  } catch {
    return `${(minor / 100).toFixed(2)} ${cur}`;
  }
}
export function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "—";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export interface LayoutProps {
  title: string;
  page: PageKey | "login";
  accounts?: Account[];
  account?: Account | null;
  flash?: { kind: "ok" | "error"; text: string } | null;
  children?: Child;
}

/** The HTML page around every console view. */
export const Layout: FC<LayoutProps> = (p) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{`${p.title} · 4Degrees ↔ HighLevel sync`}</title>
      <link rel="stylesheet" href="/console/app.css" />
    </head>
    <body>
      <header>
        <div class="topbar">
          <strong class="brand">4Degrees ↔ HighLevel sync</strong>
          {p.page !== "login" && p.accounts && p.accounts.length > 0 && (
            <form method="get" action={`/console/${p.page}`} class="picker">
              <label>
                Account{" "}
                <select name="account">
                  {p.accounts.map((a) => (
                    <option value={a.id} selected={a.id === p.account?.id}>
                      {a.name} ({a.id})
                    </option>
                  ))}
                </select>
              </label>
              <button type="submit" class="secondary">
                Show
              </button>
            </form>
          )}
          {p.page !== "login" && (
            <form method="post" action="/console/logout" class="logout">
              <button type="submit" class="secondary">
                Sign out
              </button>
            </form>
          )}
        </div>
        {p.page !== "login" && (
          <nav>
            {NAV.map(([key, label]) => (
              <a
                href={href(key, p.account?.id ?? null)}
                class={key === p.page ? "active" : ""}
                aria-current={key === p.page ? "page" : undefined}
              >
                {label}
              </a>
            ))}
          </nav>
        )}
      </header>
      <main>
        <h1>{p.title}</h1>
        {p.flash && (
          <p class={`flash ${p.flash.kind}`} role={p.flash.kind === "error" ? "alert" : "status"}>
            {p.flash.text}
          </p>
        )}
        {p.children}
      </main>
    </body>
  </html>
);

/** The plain statement shown when a page has nothing to show yet. */
export const Empty: FC<{ children?: Child }> = ({ children }) => <p class="empty">{children}</p>;

/** Shown on account-scoped pages when no account exists. */
export const NoAccount: FC = () => (
  <Empty>
    No account exists yet. Set an account's 4Degrees API key (PUT /api/accounts/&lt;id&gt;/fourdegrees) or create one
    through the admin API, then connect HighLevel on the <a href="/console/connections">Connections</a> page.
  </Empty>
);

export interface Bar {
  label: string;
  value: number;
  /** A second series drawn in red over the first (e.g. 429s, failures). */
  alert?: number;
  title?: string;
  /** Bar colour (default blue); pairs of series use `SERIES`. */
  color?: string;
}

/** Colours of a two-series chart (e.g. 4Degrees, HighLevel). */
export const SERIES = ["#3b6fb6", "#e08a1e"] as const;

/**
 * A vertical bar chart as inline SVG. `limit` draws a dashed line (e.g. a rate limit) and extends
 * the scale to it; values are labelled in `<title>` for hover and screen readers. With `groups`,
 * bars come in groups of that size, one label per group (`label` of the group's first bar), and
 * `legend` names the series.
 */
export const BarChart: FC<{
  bars: Bar[];
  label: string;
  limit?: { value: number; label: string };
  height?: number;
  unit?: string;
  groups?: number;
  legend?: string[];
}> = ({ bars, label, limit, height = 170, unit = "", groups = 1, legend }) => {
  const top = Math.max(1, ...bars.map((b) => b.value), limit?.value ?? 0);
  const left = Math.max(30, fmtInt(top).length * 6 + 12);
  const groupCount = Math.ceil(bars.length / groups);
  const groupGap = groups > 1 ? 14 : 4;
  const barW = groups > 1 ? 22 : 18;
  const width = Math.max(320, left + groupCount * (groups * barW + groupGap) + 10);
  const plotH = height - 38;
  const y = (v: number) => 8 + plotH - (v / top) * plotH;
  // Label every group when grouped (labels are wrapped to the group's width), else every nth bar.
  const step = groups > 1 ? 1 : Math.max(1, Math.ceil(bars.length / 8));
  const maxChars = Math.max(4, Math.floor((groups * barW + groupGap) / 6));
  return (
    <figure class="chart">
      <svg
        role="img"
        aria-label={label}
        width={width}
        height={height}
        viewBox={`0 0 ${width} ${height}`}
        xmlns="http://www.w3.org/2000/svg"
      >
        <title>{label}</title>
        <line x1={left} y1={8 + plotH} x2={width - 4} y2={8 + plotH} stroke="#888" />
        <text x={left - 4} y="14" text-anchor="end" font-size="10" fill="#444">
          {fmtInt(top)}
        </text>
        <text x={left - 4} y={8 + plotH} text-anchor="end" font-size="10" fill="#444">
          0
        </text>
        {bars.map((b, i) => {
          const g = Math.floor(i / groups);
          const x = left + 4 + g * (groups * barW + groupGap) + (i % groups) * barW;
          const labelled = i % groups === 0 && g % step === 0;
          const text = b.label.length > maxChars ? `${b.label.slice(0, maxChars - 1)}…` : b.label;
          return (
            <g>
              <rect
                x={x}
                y={y(b.value)}
                width={barW - 2}
                height={Math.max(0, 8 + plotH - y(b.value))}
                fill={b.color ?? SERIES[0]}
                data-value={b.value}
              >
                <title>
                  {b.title ?? `${b.label}: ${fmtInt(b.value)}${unit}${b.alert ? ` (${fmtInt(b.alert)} flagged)` : ""}`}
                </title>
              </rect>
              {b.alert ? (
                <rect
                  x={x}
                  y={y(b.alert)}
                  width={barW - 2}
                  height={Math.max(0, 8 + plotH - y(b.alert))}
                  fill="#c0392b"
                />
              ) : null}
              {labelled && (
                <text x={x + (groups * barW) / 2 - 1} y={height - 14} text-anchor="middle" font-size="10" fill="#444">
                  {text}
                </text>
              )}
            </g>
          );
        })}
        {limit && (
          <g>
            <line
              x1={left}
              y1={y(limit.value)}
              x2={width - 4}
              y2={y(limit.value)}
              stroke="#c0392b"
              stroke-dasharray="4 3"
            />
            <text
              x={width - 6}
              y={y(limit.value) < 22 ? y(limit.value) + 12 : y(limit.value) - 3}
              text-anchor="end"
              font-size="10"
              fill="#c0392b"
            >
              {limit.label}
            </text>
          </g>
        )}
      </svg>
      <figcaption>
        {legend &&
          legend.map((name, i) => (
            <span class="legend">
              <span class={`swatch swatch-${i}`}></span>
              {name}
            </span>
          ))}
        {label}
      </figcaption>
    </figure>
  );
};

/** A horizontal meter (used / limit) as SVG, e.g. the daily quota. */
export const Meter: FC<{ value: number; max: number; label: string }> = ({ value, max, label }) => {
  const pct = max > 0 ? Math.min(1, value / max) : 0;
  return (
    <figure class="meter">
      <svg
        role="img"
        aria-label={label}
        width="420"
        height="26"
        viewBox="0 0 420 26"
        xmlns="http://www.w3.org/2000/svg"
      >
        <rect x="0" y="4" width="420" height="18" fill="#e6e9ef" rx="3" />
        <rect x="0" y="4" width={Math.round(420 * pct)} height="18" fill={pct > 0.9 ? "#c0392b" : "#3b6fb6"} rx="3" />
      </svg>
      <figcaption>{label}</figcaption>
    </figure>
  );
};

/** The stylesheet (served at /console/app.css; the CSP allows styles from 'self' only). */
export const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{padding:8px 18px 0;background:#1d2330;color:#fff}
.topbar{display:flex;flex-wrap:wrap;gap:14px;align-items:center;padding-bottom:8px}
header a{color:#cfd8e6;text-decoration:none;padding:6px 10px;border-radius:4px 4px 0 0;display:inline-block}
header a.active{background:#f6f7f9;color:#1d2330;font-weight:600}
header a:hover:not(.active){background:#2e3850;color:#fff}
header nav{display:flex;gap:2px;flex-wrap:wrap}
.brand{margin-right:12px;font-size:15px}
.picker,.logout{display:flex;gap:6px;align-items:center}
.picker select{max-width:320px}
.logout{margin-left:auto}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:10px;margin:6px 0 12px}
.stat{background:#f6f7f9;border:1px solid #e3e7ee;border-radius:6px;padding:8px 12px}
.stat span{display:block;font-size:12px;color:#555}
.stat strong{font-size:20px}
.hint{font-size:12px;color:#555}
h2 small{font-size:13px;margin-left:6px}
.legend{margin-right:12px;white-space:nowrap}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
.swatch-0{background:#3b6fb6}.swatch-1{background:#e08a1e}
.card{margin-bottom:14px}
main{padding:16px 22px;max-width:1200px}
h1{font-size:22px;margin:6px 0 14px}
h2{font-size:17px;margin:22px 0 8px}
table{border-collapse:collapse;background:#fff;width:100%;margin:6px 0 14px}
th,td{border:1px solid #dde1e8;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}
td.num,th.num{text-align:right}
.flash{padding:8px 12px;border-radius:4px}
.flash.ok{background:#e3f4e7;border:1px solid #9fd3ab}
.flash.error,.error{background:#fbe7e5;border:1px solid #e3a39b}
.fielderror{color:#a5281b;font-size:12px;display:block}
.empty{padding:14px;background:#fff;border:1px dashed #b8c0cc;border-radius:4px}
.status-active,.status-connected,.status-ok,.status-delivered{color:#1e7b34;font-weight:600}
.status-needs_reconnect,.status-failed,.status-paused,.status-uninstalled{color:#a5281b;font-weight:600}
.status-backoff,.status-queued,.status-running{color:#9a6700;font-weight:600}
form.inline{display:inline}
button,.button{background:#3b6fb6;color:#fff;border:0;border-radius:4px;padding:6px 12px;cursor:pointer;text-decoration:none;display:inline-block;font:inherit}
button.secondary{background:#5d6778}
input,select,textarea{font:inherit;padding:4px 6px}
textarea{width:100%;min-height:120px;font-family:ui-monospace,monospace;font-size:12px}
pre{background:#fff;border:1px solid #dde1e8;padding:8px;overflow:auto;font-size:12px}
figure{margin:8px 0 16px}
figcaption{font-size:12px;color:#555}
.diff-old{background:#fbe7e5}.diff-new{background:#e3f4e7}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:12px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 14px}
progress{width:420px;height:20px}
label.block{display:block;margin:6px 0}
.muted{color:#666}
.steps{line-height:1.7}.steps li.current{font-weight:600}.steps .status-next{color:#3b6fb6}.steps .status-todo{color:#888}
`;
