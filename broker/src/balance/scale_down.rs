//! Scale-down is refused. The managed Kafka service kmon models answers
//! such requests with `InvalidKafkaScaleDownRequestErrorCode`; kmon uses the
//! same name (in the message; on the wire the stable error name is
//! `INVALID_KAFKA_SCALE_DOWN_REQUEST`) so operators who know the service
//! recognise it.

/// The name operators know from the managed service.
pub const ERROR_CODE_NAME: &str = "InvalidKafkaScaleDownRequestErrorCode";

/// Why it is refused.
pub const WHY: &str = "scaling a cluster down is not supported (the managed Kafka service kmon models \
refuses it too): every replica on a removed broker would first have to move to the remaining brokers, \
which may lack the room, or the fault and update domains, that the topics' replication factors need";

/// What to do instead.
pub const INSTEAD: &str = "keep the brokers and rebalance the load over them (`kmon rebalance plan`), \
or create a new cluster with fewer brokers and move the topics to it";

/// The refusal of `what` (e.g. "removing broker 2").
pub fn refusal(what: &str) -> String {
    format!(
        "{ERROR_CODE_NAME}: {what} would shrink the cluster and is refused: {WHY}. Nothing was changed. Instead, {INSTEAD}."
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_refusal_names_the_code_why_and_what_instead() {
        let text = super::refusal("removing broker 2");
        assert!(text.starts_with("InvalidKafkaScaleDownRequestErrorCode: removing broker 2 "), "{text}");
        assert!(text.contains("not supported") && text.contains("Nothing was changed"), "{text}");
        assert!(text.contains("kmon rebalance plan") && text.contains("new cluster"), "{text}");
    }
}
