// A TypeScript function: `export default { fetch }`, as Workers, Deno Deploy and Hono write them. It runs inside a
// WebAssembly JavaScript engine; TypeScript is stripped at deploy. Deploy: npx performer functions deploy hello index.ts
interface Env {
  SUPABASE_URL?: string;
  GREETING?: string;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const name: string = url.searchParams.get('name') ?? ((await request.text()) || 'world');
    console.log(`greeting ${name}`);
    return Response.json({ message: `${env.GREETING ?? 'Hello'}, ${name}!`, method: request.method });
  },
};
