import { ref } from "vue";
import { describeError } from "./errors";

// A page's last failure, in words, cleared by the next success.
export function useFailure() {
  const failure = ref<string | null>(null);

  async function run(step: () => Promise<unknown>): Promise<boolean> {
    try {
      await step();
      failure.value = null;
      return true;
    } catch (error) {
      failure.value = describeError(error);
      return false;
    }
  }

  return { failure, run };
}
