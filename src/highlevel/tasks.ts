/**
 * A HighLevel contact's tasks and tags (scopes `contacts.readonly` / `contacts.write`): what the
 * automations' `hl_task` and `hl_tag` actions call, through the location's gate like every call.
 */
import * as z from "zod";
import type { HighLevelTransport } from "./http.ts";

export const TaskSchema = z
  .object({
    id: z.string(),
    title: z.string(),
    body: z
      .string()
      .nullish()
      .transform((v) => v ?? ""),
    contactId: z.string().nullish(),
    assignedTo: z.string().nullish(),
    dueDate: z.string(),
    completed: z.boolean().nullish(),
  })
  .loose();
export type Task = z.output<typeof TaskSchema>;

/** `POST /contacts/{id}/tasks` body. */
export interface TaskInput {
  title: string;
  body?: string;
  /** ISO 8601. */
  dueDate: string;
  completed: boolean;
  assignedTo?: string;
}

const TaskEnvelope = z.object({ task: TaskSchema }).loose();
const TasksResponse = z.object({ tasks: z.array(TaskSchema) }).loose();
const TagsResponse = z.object({ tags: z.array(z.string()).nullish() }).loose();

/** Task and tag calls bound to one location. */
export function tasksApi(t: HighLevelTransport) {
  const tasks = (contactId: string) => `/contacts/${encodeURIComponent(contactId)}/tasks`;
  const tags = (contactId: string) => `/contacts/${encodeURIComponent(contactId)}/tags`;
  return {
    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/get-all-tasks
     */
    async list(contactId: string): Promise<Task[]> {
      return (await t.call({ method: "GET", path: tasks(contactId), schema: TasksResponse })).tasks;
    },

    /**
     * Answers 201. Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/create-task
     */
    async create(contactId: string, input: TaskInput): Promise<Task> {
      const body = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
      return (await t.call({ method: "POST", path: tasks(contactId), body, schema: TaskEnvelope })).task;
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/add-tags
     */
    async addTags(contactId: string, names: string[]): Promise<string[]> {
      const res = await t.call({ method: "POST", path: tags(contactId), body: { tags: names }, schema: TagsResponse });
      return res.tags ?? [];
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/remove-tags
     */
    async removeTags(contactId: string, names: string[]): Promise<string[]> {
      const res = await t.call({
        method: "DELETE",
        path: tags(contactId),
        body: { tags: names },
        schema: TagsResponse,
      });
      return res.tags ?? [];
    },
  };
}

export type TasksApi = ReturnType<typeof tasksApi>;
