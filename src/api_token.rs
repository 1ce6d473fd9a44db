//! The API token: the secret every request to a node's local HTTP API carries
//! (docs/api.md, "Authentication"). The node makes it on its first run and keeps it in
//! its home; the CLI, which runs as the home's owner, reads it there. Whoever can reach
//! the API's port without being able to read the home cannot use the node.

use std::io;
use std::path::{Path, PathBuf};

use spore_node::ErrorKind;
use subtle::ConstantTimeEq;

/// The token's file in the home: its bytes as hex text, owner-only (0600).
pub const TOKEN_FILE: &str = "api.token";

/// 32 random bytes: not guessable, and as many as a BLAKE3 hash (the longest secret
/// spore otherwise handles).
const TOKEN_BYTES: usize = 32;

/// A node's API token.
#[derive(Clone)]
pub struct ApiToken([u8; TOKEN_BYTES]);

/// Why the token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "cannot read the API token {}, which every request to the node's API must carry: {source}",
        path.display()
    )]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "{} is not an API token ({} hex digits); remove it, and the node makes a new one when it next starts",
        path.display(),
        TOKEN_BYTES * 2
    )]
    Malformed { path: PathBuf },
    #[error("cannot create the API token {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("no random bytes for the API token: {0}")]
    Random(getrandom::Error),
}

impl TokenError {
    /// Without the token a client has no right to use the node (`not_allowed`); failing
    /// to make one is the node's own failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TokenError::Read { .. } | TokenError::Malformed { .. } => ErrorKind::NotAllowed,
            TokenError::Create { .. } | TokenError::Random(_) => ErrorKind::Internal,
        }
    }
}

impl ApiToken {
    /// The token of the home at `home`, made (and kept there) if it has none yet.
    pub fn ensure(home: &Path) -> Result<ApiToken, TokenError> {
        match ApiToken::read(home) {
            Err(TokenError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            read => return read,
        }
        let path = home.join(TOKEN_FILE);
        let mut bytes = [0; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(TokenError::Random)?;
        let token = ApiToken(bytes);
        let text = format!("{}\n", token.hex());
        let created =
            spore_node::home::create_private_file(&path, text.as_bytes()).map_err(|source| {
                TokenError::Create {
                    path: path.clone(),
                    source,
                }
            })?;
        if created {
            Ok(token)
        } else {
            // Another process made it first: that one is the token.
            ApiToken::read(home)
        }
    }

    /// The token of the home at `home`.
    pub fn read(home: &Path) -> Result<ApiToken, TokenError> {
        let path = home.join(TOKEN_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| TokenError::Read {
            path: path.clone(),
            source,
        })?;
        ApiToken::parse(text.trim()).ok_or(TokenError::Malformed { path })
    }

    /// The token written as `text` (hex, either case), if it is one.
    fn parse(text: &str) -> Option<ApiToken> {
        let digits = text.as_bytes();
        if digits.len() != TOKEN_BYTES * 2 {
            return None;
        }
        let mut bytes = [0; TOKEN_BYTES];
        // Digit by digit: `from_str_radix` would also take a sign, a second spelling.
        let digit = |d: u8| char::from(d).to_digit(16);
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = u8::try_from(digit(pair[0])? << 4 | digit(pair[1])?).ok()?;
        }
        Some(ApiToken(bytes))
    }

    fn hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// The value of the `Authorization` header that presents this token.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.hex())
    }

    /// Whether `presented` (the text after `Bearer `) is this token. The comparison takes
    /// the same time wherever the two differ, so that the answer's timing tells a
    /// guesser nothing about how much of a guess was right.
    pub fn is(&self, presented: &str) -> bool {
        ApiToken::parse(presented).is_some_and(|presented| bool::from(self.0.ct_eq(&presented.0)))
    }
}

/// Never printed: a token in a log is a token given away.
impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_gets_one_owner_only_token_that_later_runs_keep() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let made = ApiToken::ensure(home.path()).unwrap();
        let path = home.path().join(TOKEN_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64, "{text}");

        let kept = ApiToken::ensure(home.path()).unwrap();
        assert!(kept.is(&made.hex()));
        assert!(ApiToken::read(home.path()).unwrap().is(text.trim()));
        let other = tempfile::tempdir().unwrap();
        assert!(!ApiToken::ensure(other.path()).unwrap().is(&made.hex()));
    }

    #[test]
    fn only_the_token_itself_is_the_token() {
        let token = ApiToken([7; TOKEN_BYTES]);
        let hex = token.hex();
        assert!(token.is(&hex));
        assert!(token.is(&hex.to_uppercase()));
        let mut one_off = hex.clone().into_bytes();
        one_off[63] = b'8';
        for wrong in [
            "",
            &hex[..62],
            &format!("{hex}00"),
            std::str::from_utf8(&one_off).unwrap(),
            &"g".repeat(64),
            &format!(" {}", &hex[1..]),
            &format!("+{}", &hex[1..]),
        ] {
            assert!(!token.is(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn a_token_file_that_holds_no_token_is_reported_not_replaced() {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join(TOKEN_FILE);
        std::fs::write(&path, "hunter2\n").unwrap();
        let error = ApiToken::ensure(home.path()).unwrap_err();
        assert!(matches!(error, TokenError::Malformed { .. }), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hunter2\n");
    }
}
