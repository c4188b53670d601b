//! Keys of a third-party issuer, fetched from its JWKS URL.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::error::{Error, ErrorKind, Result};
use crate::keys::{KeySet, MAX_JWKS_BYTES};
use crate::validate::{TokenKind, Validator, peek_kid, unix};

/// Fetches a JWKS document over HTTP. The server supplies the implementation (this
/// crate has no HTTP client); it must not follow redirects to other hosts and should
/// time out quickly.
pub trait JwksFetcher: Send + Sync {
    /// GETs `url` and returns the body.
    fn fetch(&self, url: &str) -> impl Future<Output = Result<Vec<u8>>> + Send;
}

#[derive(Debug, Default)]
struct Cache {
    keys: Option<Arc<KeySet>>,
    fetched_at: u64,
    last_attempt: Option<u64>,
}

/// A remote key set: fetched only from the configured URL (never from a token's `jku`
/// or `x5u`), cached for `ttl`, refreshed when a token names an unknown `kid` at most
/// once per `min_refresh_interval`, and served stale for up to `max_stale` while the
/// issuer is unreachable.
#[derive(Debug)]
pub struct RemoteJwks<F> {
    url: String,
    fetcher: F,
    ttl: Duration,
    min_refresh_interval: Duration,
    max_stale: Duration,
    cache: Mutex<Cache>,
    refreshing: tokio::sync::Mutex<()>,
}

impl<F: JwksFetcher> RemoteJwks<F> {
    /// A source for `url` (which must be `https://`, or `http://` on a loopback host for
    /// tests). Defaults: cache 5 minutes, refresh on unknown `kid` at most every 30 s,
    /// stale copies served for up to 24 hours.
    pub fn new(url: impl Into<String>, fetcher: F) -> Result<Self> {
        let url = url.into();
        let loopback = url.starts_with("http://127.0.0.1")
            || url.starts_with("http://localhost")
            || url.starts_with("http://[::1]");
        if !(url.starts_with("https://") || loopback) {
            return Err(Error::with(
                ErrorKind::InvalidConfig,
                "the JWKS URL must be https",
            ));
        }
        Ok(Self {
            url,
            fetcher,
            ttl: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 3600),
            cache: Mutex::new(Cache::default()),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// Sets the cache lifetime, the minimum interval between refreshes, and how long a
    /// stale copy may be served when the issuer is down.
    pub fn with_timing(
        mut self,
        ttl: Duration,
        min_refresh_interval: Duration,
        max_stale: Duration,
    ) -> Self {
        self.ttl = ttl;
        self.min_refresh_interval = min_refresh_interval;
        self.max_stale = max_stale;
        self
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current key set, fetched when absent or older than the cache lifetime.
    pub async fn keys(&self, now: SystemTime) -> Result<Arc<KeySet>> {
        let secs = unix(now);
        {
            let cache = self.cache();
            if let Some(keys) = &cache.keys
                && secs < cache.fetched_at.saturating_add(self.ttl.as_secs())
            {
                return Ok(Arc::clone(keys));
            }
        }
        self.refresh(now, false).await
    }

    /// Fetches again unless a fetch happened within `min_refresh_interval` (always
    /// when `force` is set and nothing was fetched yet). On failure, serves the cached
    /// copy while it is younger than `max_stale`.
    async fn refresh(&self, now: SystemTime, bounded: bool) -> Result<Arc<KeySet>> {
        let secs = unix(now);
        let _single_flight = self.refreshing.lock().await;
        {
            let cache = self.cache();
            let recent = cache
                .last_attempt
                .is_some_and(|t| secs < t.saturating_add(self.min_refresh_interval.as_secs()));
            let fresh = secs < cache.fetched_at.saturating_add(self.ttl.as_secs());
            if let Some(keys) = &cache.keys {
                // Another task refreshed while we waited, or we are rate-limited.
                if recent || (!bounded && fresh) {
                    return Ok(Arc::clone(keys));
                }
            } else if recent {
                return Err(Error::with(
                    ErrorKind::JwksUnavailable,
                    "waiting before the next fetch",
                ));
            }
        }
        self.cache().last_attempt = Some(secs);
        let fetched = self.fetcher.fetch(&self.url).await.and_then(|body| {
            if body.len() > MAX_JWKS_BYTES {
                Err(Error::with(
                    ErrorKind::JwksUnavailable,
                    "JWKS document too large",
                ))
            } else {
                KeySet::from_jwks_json(&body)
            }
        });
        let mut cache = self.cache();
        match fetched {
            Ok(keys) => {
                let keys = Arc::new(keys);
                cache.keys = Some(Arc::clone(&keys));
                cache.fetched_at = secs;
                Ok(keys)
            }
            Err(error) => {
                tracing::warn!(url = %self.url, %error, "JWKS fetch failed");
                match &cache.keys {
                    Some(keys)
                        if secs < cache.fetched_at.saturating_add(self.max_stale.as_secs()) =>
                    {
                        Ok(Arc::clone(keys))
                    }
                    _ => Err(Error::with(ErrorKind::JwksUnavailable, error.to_string())),
                }
            }
        }
    }

    /// Validates a token with this source's keys, refreshing once (rate-bounded) when
    /// its `kid` is unknown.
    pub async fn validate<K: TokenKind>(
        &self,
        validator: &Validator<K>,
        token: &str,
        now: SystemTime,
    ) -> Result<K::Claims> {
        let keys = self.keys(now).await?;
        match validator.validate(token, &keys, now) {
            Err(error) if error.kind() == ErrorKind::UnknownKey => {
                let Some(kid) = peek_kid(token, validator.max_bytes()) else {
                    return Err(error);
                };
                if keys.contains(&kid) {
                    return Err(error);
                }
                let keys = self.refresh(now, true).await?;
                validator.validate(token, &keys, now)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, SigningKey};
    use crate::validate::AccessTokenValidator;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::UNIX_EPOCH;

    struct Fake {
        body: Mutex<Option<Vec<u8>>>,
        calls: AtomicUsize,
        urls: Mutex<Vec<String>>,
    }

    impl JwksFetcher for Arc<Fake> {
        async fn fetch(&self, url: &str) -> Result<Vec<u8>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.urls.lock().unwrap().push(url.to_owned());
            self.body
                .lock()
                .unwrap()
                .clone()
                .ok_or_else(|| Error::with(ErrorKind::JwksUnavailable, "issuer down"))
        }
    }

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    fn jwks(keys: &[&SigningKey]) -> Vec<u8> {
        let set = KeySet::new(keys.iter().map(|k| k.verifying_key().clone()).collect()).unwrap();
        serde_json::to_vec(&set.to_jwks()).unwrap()
    }

    fn token(key: &SigningKey, now: u64) -> String {
        key.encode(
            "at+jwt",
            &serde_json::json!({"iss": "https://idp", "aud": "api", "sub": "u", "exp": now + 600,
                "iat": now, "jti": "j", "client_id": "c"}),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn caches_refreshes_on_unknown_kid_bounded_and_serves_stale() {
        let k1 = SigningKey::generate(Algorithm::ES256).unwrap();
        let k2 = SigningKey::generate(Algorithm::ES256).unwrap();
        let fake = Arc::new(Fake {
            body: Mutex::new(Some(jwks(&[&k1]))),
            calls: AtomicUsize::new(0),
            urls: Mutex::new(Vec::new()),
        });
        let remote = RemoteJwks::new("https://idp/jwks.json", Arc::clone(&fake)).unwrap();
        let validator =
            AccessTokenValidator::new("https://idp", "api", &[Algorithm::ES256]).unwrap();
        let t = 1000;
        remote
            .validate(&validator, &token(&k1, t), at(t))
            .await
            .unwrap();
        remote
            .validate(&validator, &token(&k1, t), at(t + 1))
            .await
            .unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1, "cached");

        // The issuer rotates: an unknown kid triggers one refresh.
        *fake.body.lock().unwrap() = Some(jwks(&[&k1, &k2]));
        remote
            .validate(&validator, &token(&k2, t), at(t + 40))
            .await
            .unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        // Unknown kids do not cause a fetch storm: one refresh per 30 s at most.
        let stranger = SigningKey::generate(Algorithm::ES256).unwrap();
        for i in 0..5 {
            let error = remote
                .validate(&validator, &token(&stranger, t), at(t + 41 + i))
                .await
                .unwrap_err();
            assert_eq!(error.kind(), ErrorKind::UnknownKey);
        }
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);

        // The issuer goes down: the cached keys keep working past the cache lifetime.
        *fake.body.lock().unwrap() = None;
        remote
            .validate(&validator, &token(&k2, t + 1000), at(t + 1000))
            .await
            .unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
        // ...until they are too stale.
        let late = t + 40 + 24 * 3600 + 1;
        let error = remote
            .validate(&validator, &token(&k2, late), at(late))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::JwksUnavailable);
        // Only the configured URL was ever fetched, whatever the tokens said.
        assert!(
            fake.urls
                .lock()
                .unwrap()
                .iter()
                .all(|u| u == "https://idp/jwks.json")
        );
    }

    #[tokio::test]
    async fn jku_in_a_token_is_never_fetched() {
        let k1 = SigningKey::generate(Algorithm::ES256).unwrap();
        let fake = Arc::new(Fake {
            body: Mutex::new(Some(jwks(&[&k1]))),
            calls: AtomicUsize::new(0),
            urls: Mutex::new(Vec::new()),
        });
        let remote = RemoteJwks::new("https://idp/jwks.json", Arc::clone(&fake)).unwrap();
        let validator =
            AccessTokenValidator::new("https://idp", "api", &[Algorithm::ES256]).unwrap();
        let header = serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": "evil", "jku": "https://evil/jwks"});
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input = format!("{}.{}", b64.encode(header.to_string()), b64.encode("{}"));
        let sig = b64.encode(k1.sign(input.as_bytes()).unwrap());
        let error = remote
            .validate(&validator, &format!("{input}.{sig}"), at(10))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ForbiddenHeader);
        assert_eq!(
            *fake.urls.lock().unwrap(),
            vec!["https://idp/jwks.json".to_owned()]
        );
        assert!(RemoteJwks::new("http://idp.example/jwks", Arc::clone(&fake)).is_err());
    }
}
