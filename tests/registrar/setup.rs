//! The end-to-end fixture: a namespace with Kamailio instances, the RPC token Secret, a
//! SipDomain pointing at them, and a running operator.
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use sip_operator::api::{Conditioned, SipDomain, SipUser};
use sip_operator::credentials::secret_value;

use crate::support::kamailio::Kamailio;
use crate::support::operator::Operator;
use crate::support::sipp::Registration;
use crate::support::{ControlPlane, TestNamespace, eventually};

pub const WAIT: Duration = Duration::from_secs(60);

pub struct Setup {
    pub kamailios: Vec<Kamailio>,
    pub ns: TestNamespace,
    pub users: Api<SipUser>,
    pub domains: Api<SipDomain>,
    pub secrets: Api<Secret>,
    pub fqdn: String,
    _operator: Operator,
}

impl Setup {
    pub async fn new(prefix: &str) -> Setup {
        Self::with(prefix, Kamailio::start(), "").await
    }

    /// A setup around `kamailio`, with `domain_spec` (YAML lines under `spec:`) added to the
    /// SipDomain.
    pub async fn with(prefix: &str, kamailio: Kamailio, domain_spec: &str) -> Setup {
        let target = format!("      urls: [\"{}\"]\n", kamailio.rpc_url());
        Self::with_registrar(prefix, vec![kamailio], &target, domain_spec, |_| {}, None).await
    }

    /// A setup around `kamailios` (sharing one token), reached as `target` says (YAML lines
    /// under `spec.registrar.kamailio:`); `prepare` runs in the namespace before the operator
    /// starts, which resolves host names with `hosts` as its `/etc/hosts` when given.
    pub async fn with_registrar(
        prefix: &str,
        kamailios: Vec<Kamailio>,
        target: &str,
        domain_spec: &str,
        prepare: impl FnOnce(&TestNamespace),
        hosts: Option<&std::path::Path>,
    ) -> Setup {
        Self::with_operator_args(prefix, kamailios, target, domain_spec, prepare, hosts, &[]).await
    }

    /// [`Setup::with_registrar`], the operator started with `extra_args` as well.
    pub async fn with_operator_args(
        prefix: &str,
        kamailios: Vec<Kamailio>,
        target: &str,
        domain_spec: &str,
        prepare: impl FnOnce(&TestNamespace),
        hosts: Option<&std::path::Path>,
        extra_args: &[&str],
    ) -> Setup {
        let ns = TestNamespace::create(prefix);
        let client = ControlPlane::shared().client().await;
        let fqdn = format!("{}.sip.example.com", ns.name);
        let setup_yaml = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: kamailio-rpc}}\nstringData: {{token: {token}}}\n---\n\
             apiVersion: sipoperator.io/v1alpha1\nkind: SipDomain\nmetadata: {{name: acme}}\nspec:\n  domain: {fqdn}\n  \
             registrar:\n    kamailio:\n{target}      tokenSecretRef: {{name: kamailio-rpc, key: token}}\n{domain_spec}",
            token = kamailios[0].token(),
        );
        let out = ns
            .kubectl(&["apply", "--server-side", "-f", "-"])
            .output_with_stdin(&setup_yaml);
        assert!(out.success, "apply the domain: {}", out.stderr);
        prepare(&ns);
        // Check the registrar every second (default 15 s) to keep tests short.
        // A low failure threshold, so that the shipped config's FAIL_LIMIT a test sets (the
        // source is blocked from then on) can reach it.
        let mut args = vec![
            "--registrar-check-interval-seconds",
            "1",
            "--auth-failure-warning-threshold",
            "3",
        ];
        args.extend_from_slice(extra_args);
        let operator = match hosts {
            Some(hosts) => Operator::start_with_hosts(&ns, &args, hosts).await,
            None => Operator::start_with(&ns, &args).await,
        };
        Setup {
            kamailios,
            users: Api::namespaced(client.clone(), &ns.name),
            domains: Api::namespaced(client.clone(), &ns.name),
            secrets: Api::namespaced(client, &ns.name),
            ns,
            fqdn,
            _operator: operator,
        }
    }

    /// The operator process (its log, `/metrics`).
    pub fn operator(&self) -> &Operator {
        &self._operator
    }

    /// The first (usually only) Kamailio.
    pub fn kamailio(&self) -> &Kamailio {
        &self.kamailios[0]
    }

    /// Applies `yaml` in the namespace, server-side.
    pub fn apply(&self, yaml: &str) {
        let out = self
            .ns
            .kubectl(&["apply", "--server-side", "-f", "-"])
            .output_with_stdin(yaml);
        assert!(out.success, "apply: {}\n{yaml}", out.stderr);
    }

    pub fn apply_user(&self, name: &str, extra_spec: &str, annotations: &str) {
        self.apply(&format!(
            "apiVersion: sipoperator.io/v1alpha1\nkind: SipUser\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\n\
             spec:\n  domainRef: acme\n{extra_spec}"
        ));
    }

    /// Waits until the user's RegistrarSynced condition has `status` for its current generation.
    pub async fn registrar_synced(&self, name: &str, status: &str) -> SipUser {
        eventually(&format!("{name}: RegistrarSynced={status}"), WAIT, || async {
            let u = self.users.get_opt(name).await.ok().flatten()?;
            (u.observed_generation() == u.metadata.generation
                && u.condition_status("RegistrarSynced") == Some(status))
            .then_some(u)
        })
        .await
    }

    /// Waits until the SipUser `name` no longer exists (its finalizer released).
    pub async fn gone(&self, name: &str) {
        eventually(&format!("{name} to be deleted"), WAIT, || async {
            self.users.get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await
    }

    pub async fn password(&self, user: &str) -> String {
        let secret = self
            .secrets
            .get(&format!("{user}-sip-credentials"))
            .await
            .expect("credentials Secret");
        secret_value(&secret, "password").expect("password key")
    }

    /// The final status of a REGISTER of `username` at the first Kamailio.
    pub fn register(&self, username: &str, password: &str) -> u16 {
        Registration::new(username, &self.fqdn, password)
            .run(self.kamailio().sip_addr())
            .status
    }
}
