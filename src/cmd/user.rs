//! `kmon user add|list|remove`: SASL/SCRAM-SHA-512 users of the Kafka
//! listener, kept salted in the metadata quorum (Kafka's
//! `kafka-configs.sh --alter --add-config 'SCRAM-SHA-512=[password=…]'`).

use anyhow::{Context, bail};
use clap::Subcommand;
use kmon_client::Admin;
use kmon_tls::scram::{MAX_ITERATIONS, MECHANISM, MIN_ITERATIONS};

use super::ClientArgs;

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user, or change its password. The password is salted and
    /// hashed here; the cluster never sees it.
    Add {
        name: String,
        /// The password; without it (and without KMON_SCRAM_PASSWORD) the
        /// first line of standard input.
        #[arg(long, env = "KMON_SCRAM_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// PBKDF2 iterations (Kafka's bounds).
        #[arg(long, default_value_t = MIN_ITERATIONS)]
        iterations: u32,
    },
    /// List the users (names and iterations, never keys).
    List,
    /// Remove a user: its connections already open stay, new ones fail.
    Remove { name: String },
}

pub(crate) async fn run(client: ClientArgs, command: UserCommand) -> anyhow::Result<()> {
    let admin = Admin::connect(&client.bootstrap).await?;
    match command {
        UserCommand::Add { name, password, iterations } => {
            if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
                bail!("--iterations must be {MIN_ITERATIONS}..={MAX_ITERATIONS}, not {iterations}");
            }
            let password = match password {
                Some(password) => password,
                None => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            if password.is_empty() {
                bail!("the password of {name:?} is empty (give --password, KMON_SCRAM_PASSWORD or a line on stdin)");
            }
            let replaced = admin
                .upsert_scram_user(&name, &password, iterations)
                .await
                .with_context(|| format!("adding SCRAM user {name:?} failed"))?;
            let what = if replaced { "password changed" } else { "added" };
            println!("{MECHANISM} user {name:?} {what} ({iterations} iterations)");
        }
        UserCommand::List => {
            let users = admin.list_scram_users().await.context("listing SCRAM users failed")?;
            if users.is_empty() {
                println!("no SCRAM users");
            }
            for user in users {
                println!("{:<24} {} iterations={}", user.user, user.mechanism, user.iterations);
            }
        }
        UserCommand::Remove { name } => {
            admin.delete_scram_user(&name).await.with_context(|| format!("removing SCRAM user {name:?} failed"))?;
            println!("{MECHANISM} user {name:?} removed");
        }
    }
    Ok(())
}
