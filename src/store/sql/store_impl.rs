//! The `Store` implementation: each method hands over to the part that
//! owns it (`webhooks`, `catalogue`, `deliveries` here; the hot path and
//! the instance methods to the backend).

use std::sync::Arc;

use async_trait::async_trait;

use super::Backend;
use crate::domain::api_key::Permission;
use crate::domain::delivery::DeliveryJob;
use crate::domain::webhook::{Webhook, WebhookSecrets};
use crate::store::{
    AdminSessionRecord, ApiKeyRecord, AttemptRow, CommitBatch, CommitFailed, Committed,
    DeliveryFilter, DeliveryRecord, EventFilter, EventRecord, EventTypeRecord, HistogramRow, Page,
    QueueStats, Store, StoreResult, WebhookFilter,
};

#[async_trait]
impl Store for Backend {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(self.reader()).await?;
        Ok(())
    }

    async fn create_webhook(
        &self,
        webhook: &Webhook,
        secret: &str,
        now: i64,
    ) -> StoreResult<Webhook> {
        self.create_webhook_impl(webhook, secret, now).await
    }

    async fn get_webhook(&self, tenant: &str, id: i64) -> StoreResult<Option<Webhook>> {
        self.get_webhook_impl(tenant, id).await
    }

    async fn list_webhooks(
        &self,
        tenant: &str,
        filter: &WebhookFilter,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Page<Webhook>> {
        self.list_webhooks_impl(tenant, filter, offset, limit).await
    }

    async fn update_webhook(&self, webhook: &Webhook, now: i64) -> StoreResult<Option<Webhook>> {
        self.update_webhook_impl(webhook, now).await
    }

    async fn delete_webhook(&self, tenant: &str, id: i64) -> StoreResult<bool> {
        self.delete_webhook_impl(tenant, id).await
    }

    async fn get_webhook_secrets(
        &self,
        tenant: &str,
        id: i64,
    ) -> StoreResult<Option<WebhookSecrets>> {
        self.get_webhook_secrets_impl(tenant, id).await
    }

    async fn rotate_webhook_secret(
        &self,
        tenant: &str,
        id: i64,
        new_secret: &str,
        previous_until: i64,
        now: i64,
    ) -> StoreResult<bool> {
        self.rotate_webhook_secret_impl(tenant, id, new_secret, previous_until, now)
            .await
    }

    async fn set_webhook_suspended(
        &self,
        tenant: &str,
        id: i64,
        suspended: bool,
        now: i64,
    ) -> StoreResult<Option<Webhook>> {
        self.set_webhook_suspended_impl(tenant, id, suspended, now)
            .await
    }

    async fn list_event_types(&self, tenant: &str) -> StoreResult<Vec<EventTypeRecord>> {
        self.list_event_types_impl(tenant).await
    }

    async fn create_event_type(&self, tenant: &str, record: &EventTypeRecord) -> StoreResult<()> {
        self.create_event_type_impl(tenant, record).await
    }

    async fn archive_event_type(&self, tenant: &str, record: &EventTypeRecord) -> StoreResult<()> {
        self.archive_event_type_impl(tenant, record).await
    }

    async fn restore_event_type(&self, tenant: &str, name: &str) -> StoreResult<bool> {
        self.restore_event_type_impl(tenant, name).await
    }

    async fn create_api_key(
        &self,
        tenant: &str,
        name: &str,
        key_hash: &[u8],
        permissions: &[Permission],
        now: i64,
    ) -> StoreResult<ApiKeyRecord> {
        self.create_api_key_impl(tenant, name, key_hash, permissions, now)
            .await
    }

    async fn list_api_keys(&self, tenant: Option<&str>) -> StoreResult<Vec<ApiKeyRecord>> {
        self.list_api_keys_impl(tenant).await
    }

    async fn revoke_api_key(&self, tenant: &str, id: i64, now: i64) -> StoreResult<bool> {
        self.revoke_api_key_impl(tenant, id, now).await
    }

    async fn find_api_key(&self, key_hash: &[u8]) -> StoreResult<Option<ApiKeyRecord>> {
        self.find_api_key_impl(key_hash).await
    }

    async fn commit_batch(&self, batch: CommitBatch, now: i64) -> Result<Committed, CommitFailed> {
        self.commit_hot(batch, now).await
    }

    async fn claim_due_deliveries(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryJob>> {
        self.claim_hot(owner, now, lease_until, limit).await
    }

    async fn release_leases(&self, owner: Option<&str>, now: i64) -> StoreResult<u64> {
        self.release_leases_impl(owner, now).await
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        self.next_due_at_impl().await
    }

    async fn retry_delivery(
        &self,
        tenant: &str,
        id: i64,
        now: i64,
    ) -> StoreResult<Option<DeliveryRecord>> {
        self.retry_delivery_impl(tenant, id, now).await
    }

    async fn recover_webhook(
        &self,
        tenant: &str,
        webhook_id: i64,
        since: i64,
        now: i64,
    ) -> StoreResult<u64> {
        self.recover_webhook_impl(tenant, webhook_id, since, now)
            .await
    }

    async fn list_deliveries(
        &self,
        tenant: &str,
        filter: &DeliveryFilter,
        before: Option<i64>,
        limit: u64,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        self.list_deliveries_impl(tenant, filter, before, limit)
            .await
    }

    async fn get_delivery(
        &self,
        tenant: &str,
        id: i64,
    ) -> StoreResult<Option<(DeliveryRecord, Vec<AttemptRow>)>> {
        self.get_delivery_impl(tenant, id).await
    }

    async fn get_event(&self, tenant: &str, id: &str) -> StoreResult<Option<EventRecord>> {
        self.get_event_impl(tenant, id).await
    }

    async fn list_events(
        &self,
        tenant: &str,
        filter: &EventFilter,
        before: Option<i64>,
        limit: u64,
    ) -> StoreResult<Vec<EventRecord>> {
        self.list_events_impl(tenant, filter, before, limit).await
    }

    async fn purge_events(&self, before: i64, batch: u64) -> StoreResult<u64> {
        self.purge_events_impl(before, batch).await
    }

    async fn queue_stats(&self, now: i64) -> StoreResult<QueueStats> {
        self.queue_stats_impl(now).await
    }

    async fn create_admin_session(&self, session: &AdminSessionRecord) -> StoreResult<()> {
        self.create_admin_session_impl(session).await
    }

    async fn find_admin_session(
        &self,
        id_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<AdminSessionRecord>> {
        self.find_admin_session_impl(id_hash, now).await
    }

    async fn set_admin_session_tenant(&self, id_hash: &[u8], tenant: &str) -> StoreResult<()> {
        self.set_admin_session_tenant_impl(id_hash, tenant).await
    }

    async fn delete_admin_session(&self, id_hash: &[u8]) -> StoreResult<()> {
        self.delete_admin_session_impl(id_hash).await
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        self.get_setting_impl(key).await
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        self.put_setting_impl(key, value).await
    }

    async fn delete_setting(&self, key: &str) -> StoreResult<()> {
        self.delete_setting_impl(key).await
    }

    async fn delivery_histogram(
        &self,
        tenant: &str,
        webhook_id: Option<i64>,
        since: i64,
        bucket_ms: i64,
    ) -> StoreResult<Vec<HistogramRow>> {
        self.delivery_histogram_impl(tenant, webhook_id, since, bucket_ms)
            .await
    }

    async fn heartbeat(&self, owner: &str, now: i64) -> StoreResult<()> {
        self.heartbeat_impl(owner, now).await
    }

    async fn release_dead_leases(&self, now: i64, dead_before: i64) -> StoreResult<u64> {
        self.release_dead_leases_impl(now, dead_before).await
    }

    async fn forget_instance(&self, owner: &str) -> StoreResult<()> {
        self.forget_instance_impl(owner).await
    }

    fn work_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.work_signal_impl()
    }
}
