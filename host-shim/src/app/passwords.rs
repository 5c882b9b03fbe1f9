//! Password hashing for sign-in: bcrypt on tokio's blocking threads, at most
//! as many at once as the machine has cores, so a burst of logins queues
//! for CPU instead of stalling the async workers that answer everything else.
//! A login for a name nobody has still runs one verify (against a fixed hash
//! of the same cost), so the answer's timing does not tell whether the
//! account exists.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Semaphore;

/// bcrypt's work factor for stored passwords (Mattermost's).
pub const COST: u32 = 10;

/// A bcrypt hash of a random word at [`COST`], verified in place of a stored
/// hash when the login names no account. Its password is not known and does
/// not matter: that verify's result is never used.
pub const DUMMY_HASH: &str = "$2b$10$MsPe1Ukq.2FXAUqwplq1o.72Wk8yThcn8rxIIbmxTmm9Plof0dSYi";

/// The bounded hasher, one per App.
pub struct Passwords {
    permits: Arc<Semaphore>,
    limit: usize,
    verifies: AtomicU64,
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords::new(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        )
    }
}

impl Passwords {
    /// A hasher that runs at most `limit` (at least 1) hashes at once.
    pub fn new(limit: usize) -> Passwords {
        let limit = limit.max(1);
        Passwords {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            verifies: AtomicU64::new(0),
        }
    }

    /// How many hashes may run at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// bcrypt verifies run so far (stored or dummy hash), for tests that
    /// check an unknown name costs one.
    pub fn verifies(&self) -> u64 {
        self.verifies.load(Ordering::Relaxed)
    }

    /// A new hash of `password` at [`COST`].
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = password.to_string();
        self.run(move || bcrypt::hash(password.as_str(), COST))
            .await?
            .map_err(anyhow::Error::from)
    }

    /// Whether `password` matches `hash`. With no hash (no such account) the
    /// dummy hash is verified all the same and the answer is `false`.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        self.verifies.fetch_add(1, Ordering::Relaxed);
        let password = password.to_string();
        let (stored, known) = match hash {
            Some(hash) => (hash.to_string(), true),
            None => (DUMMY_HASH.to_string(), false),
        };
        let matched = self
            .run(move || bcrypt::verify(password.as_str(), &stored).unwrap_or(false))
            .await
            .unwrap_or(false);
        known && matched
    }

    /// Runs `work` on a blocking thread once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let permit = self.permits.clone().acquire_owned().await?;
        let result = tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_has_the_stored_hashes_cost() {
        let parts: Vec<&str> = DUMMY_HASH.split('$').collect();
        assert_eq!(parts[2].parse::<u32>().unwrap(), COST);
        assert!(bcrypt::verify("anything", DUMMY_HASH).is_ok());
    }

    #[tokio::test]
    async fn an_unknown_account_costs_one_verify_and_never_matches() {
        let passwords = Passwords::new(1);
        let hash = passwords.hash("right").await.unwrap();
        assert!(passwords.verify("right", Some(&hash)).await);
        assert!(!passwords.verify("wrong", Some(&hash)).await);
        assert_eq!(passwords.verifies(), 2);
        assert!(!passwords.verify("right", None).await);
        assert_eq!(passwords.verifies(), 3);
    }

    /// Never more hashes at once than the limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_limit_hashes_run_at_once() {
        let passwords = Arc::new(Passwords::new(2));
        let running = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (passwords, running, most) = (passwords.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                passwords
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                    .unwrap()
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} at once");
    }
}
