// What the programs of tests/typescript share: a check, a bounded wait, a rejection, and
// the "ok <check>" line each check prints.

export function check(condition: boolean, what: string): void {
  if (!condition) {
    throw new Error(`check failed: ${what}`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `condition` every `everyMs` until it holds; fail after `ms`. */
export async function waitFor(condition: () => boolean, what: string, ms = 5000, everyMs = 2): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > ms) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(everyMs);
  }
}

/** What `promise` rejects with; fails if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

export function ok(name: string): void {
  console.log(`ok ${name}`);
}
