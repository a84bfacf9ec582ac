//! Runs the embedded API server standalone until Ctrl-C:
//! `cargo run -p kubewasm-apiserver --example serve -- [LISTEN_ADDR] [KUBECONFIG_OUT]`.

use kubewasm_apiserver::{ApiServer, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut config = Config::default();
    if let Some(listen) = args.next() {
        config.listen = listen.parse()?;
    }
    let kubeconfig = args.next().unwrap_or_else(|| "kubewasm.kubeconfig".into());
    let server = ApiServer::start(config).await?;
    server.write_kubeconfig(std::path::Path::new(&kubeconfig))?;
    println!("{}", server.url());
    println!("kubeconfig written to {kubeconfig}");
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
