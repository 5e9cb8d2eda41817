//! AWS credentials for the S3 store when no static keys are configured: the AWS SDK's default
//! chain — environment variables, the shared `config`/`credentials` files with profiles
//! (`AWS_PROFILE`, `AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`), `credential_process`, SSO,
//! web identity tokens, assume-role from a profile, ECS container and EC2 instance metadata —
//! handed to object_store through its [`CredentialProvider`] trait.
//!
//! The chain is resolved on first use (it is async) and each credential is cached until five
//! minutes before it expires, so a request signs with cached keys and a refresh happens once,
//! not per request. Time comes from the injected [`Clock`].

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::Region;
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use object_store::aws::AwsCredential;
use object_store::CredentialProvider;
use shale_common::Clock;
use tokio::sync::{Mutex, OnceCell};

/// Refresh this long before a credential expires (object_store's own token cache uses the same).
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// The default AWS credential chain, resolved lazily and cached.
#[derive(Debug)]
pub(crate) struct DefaultChain {
    region: String,
    clock: Arc<dyn Clock>,
    chain: OnceCell<DefaultCredentialsChain>,
    cached: Mutex<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    credential: Arc<AwsCredential>,
    /// Milliseconds since the epoch after which it must be refreshed (`None`: never expires).
    refresh_at_ms: Option<i64>,
}

impl DefaultChain {
    pub(crate) fn new(region: &str, clock: Arc<dyn Clock>) -> DefaultChain {
        DefaultChain {
            region: region.to_string(),
            clock,
            chain: OnceCell::new(),
            cached: Mutex::new(None),
        }
    }

    async fn chain(&self) -> &DefaultCredentialsChain {
        self.chain
            .get_or_init(|| async {
                let http = aws_smithy_http_client::Builder::new()
                    .tls_provider(Provider::Rustls(CryptoMode::Ring))
                    .build_https();
                let region = Region::new(self.region.clone());
                let conf = ProviderConfig::without_region()
                    .with_region(Some(region.clone()))
                    .with_http_client(http);
                DefaultCredentialsChain::builder()
                    .region(region)
                    .configure(conf)
                    .build()
                    .await
            })
            .await
    }

    async fn fetch(&self) -> object_store::Result<Cached> {
        let creds = self
            .chain()
            .await
            .provide_credentials()
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: format!("no AWS credentials from the default chain: {e}").into(),
            })?;
        let refresh_at_ms = creds.expiry().map(|t| {
            let at = t
                .checked_sub(REFRESH_BEFORE_EXPIRY)
                .unwrap_or(UNIX_EPOCH)
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            i64::try_from(at.as_millis()).unwrap_or(i64::MAX)
        });
        Ok(Cached {
            credential: Arc::new(AwsCredential {
                key_id: creds.access_key_id().to_string(),
                secret_key: creds.secret_access_key().to_string(),
                token: creds.session_token().map(str::to_string),
            }),
            refresh_at_ms,
        })
    }
}

#[async_trait]
impl CredentialProvider for DefaultChain {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        let now = self.clock.now_ms();
        if let Some(c) = cached.as_ref() {
            if c.refresh_at_ms.is_none_or(|at| now < at) {
                return Ok(c.credential.clone());
            }
        }
        let fresh = self.fetch().await?;
        let credential = fresh.credential.clone();
        *cached = Some(fresh);
        Ok(credential)
    }
}
