/**
 * The example rules the console offers to enable with one click. "won → Slack" needs one of the
 * account's Slack notification targets (a notification rule), which the caller passes.
 */
import type { NewAutomationInput } from "../domain/automation-rule.ts";

export const EXAMPLES = {
  "term-sheet-task": { label: "Term Sheet → task for the owner" },
  "won-slack": { label: "Won → Slack" },
  "quiet-reminder": { label: "No activity for 14 days → reminder" },
} as const;
export type ExampleKey = keyof typeof EXAMPLES;

/** The rule of an example; null when it needs a Slack target and none was given. */
export function exampleRule(key: ExampleKey, slackTargetId: string | null): NewAutomationInput | null {
  switch (key) {
    case "term-sheet-task":
      return {
        name: EXAMPLES[key].label,
        trigger: { kind: "stage_entered", stage: "Term Sheet" },
        actions: [
          {
            kind: "hl_task",
            title: "Prepare the term sheet",
            body: "The deal reached Term Sheet: draft the terms and book the partner review.",
            dueInDays: 2,
          },
        ],
      };
    case "won-slack":
      return slackTargetId
        ? {
            name: EXAMPLES[key].label,
            trigger: { kind: "won" },
            actions: [{ kind: "notify", notificationRuleId: slackTargetId, text: "won 🎉" }],
          }
        : null;
    case "quiet-reminder":
      return {
        name: EXAMPLES[key].label,
        trigger: { kind: "no_activity", days: 14 },
        actions: [
          { kind: "fd_reminder", title: "Check in", body: "Nothing happened on this deal for 14 days.", dueInDays: 0 },
        ],
      };
  }
}
