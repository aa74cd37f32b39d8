import { ApiError } from "../api/http";

const CODE_WORDS: Record<string, string> = {
  bad_request: "The admin daemon refused the input",
  unauthorized: "Your session is not valid",
  forbidden: "Your role may not do this",
  not_found: "Not found",
  conflict: "Conflict",
  too_large: "The request is too large",
  unsupported_media_type: "The request was not sent as JSON",
  unavailable: "A service the admin daemon needs is unavailable",
  internal: "The admin daemon failed",
};

// Words for a person: what kind of failure, then the server's own reason.
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    const kind = CODE_WORDS[error.code];

    if (!kind || error.code === "network") {
      return error.message;
    }
    const reason = error.message.trim();
    return reason ? `${kind}: ${reason}` : `${kind}.`;
  }
  if (error instanceof Error && error.message) {
    return error.message;
  }
  return "Something went wrong, and no reason was given.";
}

export function isConflict(error: unknown): boolean {
  return error instanceof ApiError && error.status === 409;
}
