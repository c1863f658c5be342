//! Start-up only: flags, logs, client, CRD check, health server, leader election, controllers.
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use futures::FutureExt;
use kube::Client;
use kube::runtime::events::Reporter;
use sip_operator::cli::Args;
use sip_operator::controller;
use sip_operator::http::{self, HttpState};
use sip_operator::leader::Election;
use sip_operator::metrics::Metrics;
use sip_operator::scope::Scope;
use sip_operator::{crd_check, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = telemetry::init(args.log_format, &args.log_level) {
        eprintln!("sip-operator: {e}");
        return ExitCode::from(2);
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "sip-operator stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("no Kubernetes client configuration (in-cluster or KUBECONFIG): {e}"))?;
    crd_check::ensure_installed(&client).await?;

    let identity = args.identity();
    let scope = Scope::of(&args.namespaces);
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));

    let (stop_tx, stop_rx) = futures::channel::oneshot::channel::<()>();
    let shutdown = stop_rx.map(|_| ()).shared();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        let _ = stop_tx.send(());
    });

    let state = HttpState {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    let (addr, server) = http::bind(args.http_addr, state, shutdown.clone())
        .await
        .map_err(|e| format!("--http-addr {}: {e}", args.http_addr))?;
    let server = tokio::spawn(server);
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    // The invite page runs on every replica, leader or not: it serves from its own watch.
    let invites = match (&args.invite_listen, &args.invite_tls_cert, &args.invite_tls_key) {
        (Some(listen), Some(cert), Some(key)) => {
            let reporter = Reporter {
                controller: "sip-operator".into(),
                instance: Some(identity.clone()),
            };
            let (addr, page) = sip_operator::invite::bind(
                sip_operator::invite::Listen {
                    addr: *listen,
                    cert: cert.clone(),
                    key: key.clone(),
                    base_url: args.invite_url.clone(),
                },
                client.clone(),
                &scope,
                reporter,
                shutdown.clone(),
            )
            .await
            .map_err(|e| format!("--invite-listen {listen}: {e}"))?;
            tracing::info!(%addr, url = ?args.invite_url, "serving the invite page over HTTPS");
            Some(tokio::spawn(page))
        }
        _ => None,
    };

    let lease_ns = args.lease_namespace();
    let mut election = Election::join(
        client.clone(),
        &lease_ns,
        &args.lease_name,
        &identity,
        args.lease_duration_seconds,
    )
    .await
    .map_err(|e| format!("leader election on Lease {lease_ns}/{}: {e}", args.lease_name))?;
    ready.store(true, Ordering::Release);
    tracing::info!(%identity, lease = %format!("{lease_ns}/{}", args.lease_name), "waiting to lead");

    let mut outcome = Ok(());
    let leading = tokio::select! {
        acquired = election.acquired() => acquired,
        _ = shutdown.clone() => false,
    };
    if leading {
        metrics.set_leader(true);
        tracing::info!(%identity, ?scope, "leading: starting controllers");
        let (halt_tx, halt_rx) = futures::channel::oneshot::channel::<()>();
        let reporter = Reporter {
            controller: "sip-operator".into(),
            instance: Some(identity.clone()),
        };
        let settings = controller::Settings {
            registrar_check_interval: std::time::Duration::from_secs(args.registrar_check_interval_seconds),
            auth_failure_warning_threshold: args.auth_failure_warning_threshold,
            invite_url: args.invite_url.clone(),
        };
        let controllers = controller::run(
            client,
            scope,
            settings,
            metrics.clone(),
            reporter,
            halt_rx.map(|_| ()).shared(),
        );
        tokio::pin!(controllers);
        tokio::select! {
            _ = &mut controllers => {}
            _ = shutdown.clone() => {
                let _ = halt_tx.send(());
                controllers.await;
            }
            _ = election.lost() => {
                // Another replica leads now: stop at once rather than risk two writers.
                outcome = Err("lost the leader Lease".to_string());
                let _ = halt_tx.send(());
                controllers.await;
            }
        }
        metrics.set_leader(false);
        tracing::info!("controllers stopped");
    }
    if let Err(e) = election.leave().await {
        tracing::warn!(error = %e, "could not release the Lease; a standby takes over when it expires");
    }
    ready.store(false, Ordering::Release);
    shutdown.await;
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server stopped with an error"),
        Err(e) => tracing::warn!(error = %e, "HTTP server task failed"),
    }
    if let Some(page) = invites {
        match page.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "invite page stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "invite page task failed"),
        }
    }
    outcome
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
