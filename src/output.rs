//! What a command hands back to `main` to print: its text for stdout, its
//! exit status and any notes for stderr. Shared by the client and service
//! commands; only `main` prints.

/// What a command prints on stdout, and its exit status.
pub struct Output {
    pub text: String,
    pub code: i32,
    /// Lines for stderr (warnings, or the error of a command that still
    /// has a report to show); `main` prints each as `clawgate: <note>`.
    pub notes: Vec<String>,
}

impl Output {
    pub fn new(text: String, code: i32) -> Output {
        Output {
            text,
            code,
            notes: Vec::new(),
        }
    }
}
