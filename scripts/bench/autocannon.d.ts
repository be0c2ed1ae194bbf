/** The part of autocannon 9's API the benchmarks use (the package ships no types). Results are zod-parsed where read. */
declare module "autocannon" {
  interface AutocannonRequest {
    method?: string;
    path?: string;
    body?: string;
    headers?: Record<string, string>;
    setupRequest?: (request: AutocannonRequest) => AutocannonRequest;
    onResponse?: (status: number, body: string) => void;
  }
  interface AutocannonOptions {
    url: string;
    connections?: number;
    pipelining?: number;
    duration?: number;
    amount?: number;
    method?: string;
    headers?: Record<string, string>;
    requests?: AutocannonRequest[];
  }
  function autocannon(options: AutocannonOptions): Promise<unknown>;
  export default autocannon;
}
