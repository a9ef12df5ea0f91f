//! Sessions of real browsers: a person who signs in on the mock's sign-in page gets a
//! cookie naming one of these, as Entra keeps its own session cookie. Bounded (the oldest
//! goes first), emptied by reset and sign-out; the scripted user (`MockEntra::sign_in`)
//! is separate and needs no cookie.

use std::collections::{HashMap, VecDeque};

/// Sessions a mock keeps at most; a browser whose session was dropped signs in again.
const MAX_SESSIONS: usize = 1024;

#[derive(Default)]
pub(crate) struct BrowserSessions {
    /// Session id (the cookie's value) -> the user's object id.
    users: HashMap<String, String>,
    /// Session ids, oldest first.
    order: VecDeque<String>,
}

impl std::fmt::Debug for BrowserSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A session id is a bearer credential for the mock's pages: never shown.
        f.debug_struct("BrowserSessions")
            .field("open", &self.users.len())
            .finish()
    }
}

impl BrowserSessions {
    /// Opens a session for `object_id`; returns its id (unguessable: 256 random bits).
    pub(crate) fn open(&mut self, object_id: &str) -> String {
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        self.users.insert(id.clone(), object_id.to_owned());
        self.order.push_back(id.clone());
        while self.order.len() > MAX_SESSIONS {
            if let Some(oldest) = self.order.pop_front() {
                self.users.remove(&oldest);
            }
        }
        id
    }

    /// The object id of the user session `id` belongs to.
    pub(crate) fn user(&self, id: &str) -> Option<&str> {
        self.users.get(id).map(String::as_str)
    }

    /// Ends session `id` (sign-out from the browser).
    pub(crate) fn close(&mut self, id: &str) {
        if self.users.remove(id).is_some() {
            self.order.retain(|s| s != id);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.users.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bounded_and_the_oldest_goes_first() {
        let mut sessions = BrowserSessions::default();
        let first = sessions.open("user-0");
        let second = sessions.open("user-1");
        assert_ne!(first, second);
        assert_eq!(sessions.user(&first), Some("user-0"));
        for i in 2..=MAX_SESSIONS {
            sessions.open(&format!("user-{i}"));
        }
        assert_eq!(sessions.user(&first), None, "dropped when over the bound");
        assert_eq!(sessions.user(&second), Some("user-1"));
        sessions.close(&second);
        assert_eq!(sessions.user(&second), None);
        assert!(!format!("{sessions:?}").contains(&second[..8]));
    }
}
