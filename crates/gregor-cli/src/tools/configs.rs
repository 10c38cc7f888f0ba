//! `gregor configs`: Kafka's `kafka-configs` for topics and brokers — describe a resource's
//! overrides (or, with `--all`, every config with its source), and change single keys with
//! IncrementalAlterConfigs (`--add-config k=v,k2=v2`, `--delete-config k,k2`). As in Kafka,
//! a value holding commas goes in brackets: `--add-config cleanup.policy=[compact,delete]`.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use gregor_client::admin::{AlterConfigOp, ConfigResource, ConfigSource};
use serde_json::json;

use super::ConnectArgs;

use super::cluster::admin;
use super::output::{OutputFormat, client_error, emit, emit_line, item_error, print_json, table};

/// `gregor configs` arguments.
#[derive(Args, Debug)]
pub struct ConfigsArgs {
    #[command(subcommand)]
    command: ConfigsCommand,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum EntityType {
    /// Topic configs.
    Topics,
    /// Broker configs (entity name: the node id).
    Brokers,
}

#[derive(Args, Debug)]
struct Entity {
    /// topics or brokers.
    #[arg(long = "entity-type", value_enum)]
    entity_type: EntityType,
    /// Topic name or broker id.
    #[arg(long = "entity-name")]
    entity_name: String,
}

impl Entity {
    fn resource(&self) -> ConfigResource {
        match self.entity_type {
            EntityType::Topics => ConfigResource::Topic(self.entity_name.clone()),
            EntityType::Brokers => ConfigResource::Broker(self.entity_name.clone()),
        }
    }
}

#[derive(Subcommand, Debug)]
enum ConfigsCommand {
    /// Show a topic's or broker's config overrides (--all: every config and its source).
    Describe {
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(flatten)]
        entity: Entity,
        /// Every config, defaults included, with where its value comes from.
        #[arg(long)]
        all: bool,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Set or remove config overrides, leaving the other keys as they are.
    Alter {
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(flatten)]
        entity: Entity,
        /// Keys to set: k=v,k2=v2 (a value with commas in brackets: k=[a,b]).
        #[arg(long = "add-config", value_name = "K=V,...")]
        add_config: Option<String>,
        /// Keys to remove (back to their defaults): k,k2.
        #[arg(long = "delete-config", value_name = "K,...")]
        delete_config: Option<String>,
    },
}

/// Runs `gregor configs`.
pub async fn run(args: ConfigsArgs) -> Result<()> {
    match args.command {
        ConfigsCommand::Describe {
            connect,
            entity,
            all,
            output,
        } => describe(&connect, &entity, all, output).await,
        ConfigsCommand::Alter {
            connect,
            entity,
            add_config,
            delete_config,
        } => alter(&connect, &entity, add_config, delete_config).await,
    }
}

fn is_dynamic(source: ConfigSource) -> bool {
    matches!(
        source,
        ConfigSource::DynamicTopic
            | ConfigSource::DynamicBroker
            | ConfigSource::DynamicDefaultBroker
    )
}

async fn describe(
    connect: &ConnectArgs,
    entity: &Entity,
    all: bool,
    output: OutputFormat,
) -> Result<()> {
    let admin = admin(connect)?;
    let resource = entity.resource();
    let mut described = admin
        .describe_configs(std::slice::from_ref(&resource))
        .await
        .map_err(client_error)?;
    let entries = match described.remove(&resource) {
        Some(Ok(entries)) => entries,
        Some(Err(e)) => {
            let hint = match e.code().map(|c| c.0) {
                Some(3) => format!("{} does not exist", entity.resource().describe()),
                _ => String::new(),
            };
            return Err(item_error(e, &hint));
        }
        None => bail!(
            "UNKNOWN_SERVER_ERROR: no answer for {}",
            entity.resource().describe()
        ),
    };
    let entries: Vec<_> = entries
        .into_iter()
        .filter(|e| all || is_dynamic(e.source))
        .collect();
    let value = |e: &gregor_client::admin::ConfigEntry| {
        if e.sensitive {
            "[hidden]".to_string()
        } else {
            e.value.clone().unwrap_or_else(|| "null".to_string())
        }
    };
    match output {
        OutputFormat::Json => print_json(&json!(
            entries
                .iter()
                .map(|e| json!({
                    "name": e.name,
                    "value": if e.sensitive { None } else { e.value.clone() },
                    "source": e.source.name(),
                    "read_only": e.read_only,
                    "sensitive": e.sensitive,
                }))
                .collect::<Vec<_>>()
        )),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| vec![e.name.clone(), value(e), e.source.name().to_string()])
                .collect();
            emit(&table(&["NAME", "VALUE", "SOURCE"], &rows));
        }
    }
    Ok(())
}

/// Splits `a=1,b=[x,y],c=2` at the commas outside brackets, and drops the brackets.
fn split_configs(list: &str) -> Result<Vec<(String, String)>> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in list.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    items
        .into_iter()
        .filter(|i| !i.trim().is_empty())
        .map(|item| {
            let (k, v) = super::key_value(&item, "--add-config")?;
            let (k, v) = (k.to_string(), v.trim().to_string());
            let v = v
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .map_or(v.clone(), str::to_string);
            Ok((k, v))
        })
        .collect()
}

async fn alter(
    connect: &ConnectArgs,
    entity: &Entity,
    add: Option<String>,
    delete: Option<String>,
) -> Result<()> {
    let mut ops = Vec::new();
    if let Some(add) = &add {
        for (k, v) in split_configs(add)? {
            ops.push(AlterConfigOp::Set(k, v));
        }
    }
    if let Some(delete) = &delete {
        for k in delete.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            ops.push(AlterConfigOp::Delete(k.to_string()));
        }
    }
    if ops.is_empty() {
        bail!("INVALID_REQUEST: nothing to change; give --add-config and/or --delete-config");
    }
    let admin = admin(connect)?;
    let resource = entity.resource();
    let mut results = admin
        .incremental_alter_configs(&BTreeMap::from([(resource.clone(), ops)]), false)
        .await
        .map_err(client_error)?;
    match results.remove(&resource) {
        Some(Ok(())) => {
            emit_line!(
                "Completed updating config for {}.",
                entity.resource().describe()
            );
            Ok(())
        }
        Some(Err(e)) => {
            let hint = match e.code().map(|c| c.0) {
                Some(3) => format!("{} does not exist", entity.resource().describe()),
                _ => String::new(),
            };
            Err(item_error(e, &hint))
        }
        None => bail!(
            "UNKNOWN_SERVER_ERROR: no answer for {}",
            entity.resource().describe()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_split_like_kafka_configs() {
        assert_eq!(
            split_configs("retention.ms=1000,cleanup.policy=[compact,delete], a = b").unwrap(),
            [
                ("retention.ms".to_string(), "1000".to_string()),
                ("cleanup.policy".to_string(), "compact,delete".to_string()),
                ("a".to_string(), "b".to_string()),
            ]
        );
        assert!(split_configs("novalue").is_err());
    }
}
