using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;
using Rpt.Portal.Api;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Data;

public class ApplicationDbContext : IdentityDbContext<ApplicationUser>
{
    public ApplicationDbContext(DbContextOptions<ApplicationDbContext> options) : base(options) { }

    /// <summary>For an engine's own context (<see cref="Postgres.PostgresDbContext"/>), whose migrations are its own.</summary>
    protected ApplicationDbContext(DbContextOptions options) : base(options) { }

    public DbSet<Tenant> Tenants => Set<Tenant>();
    public DbSet<Plan> Plans => Set<Plan>();
    public DbSet<Price> Prices => Set<Price>();
    public DbSet<ConversionRule> ConversionRules => Set<ConversionRule>();
    public DbSet<UsageEvent> UsageEvents => Set<UsageEvent>();
    public DbSet<UsageTotal> UsageTotals => Set<UsageTotal>();
    public DbSet<UsageDaily> UsageDaily => Set<UsageDaily>();
    public DbSet<UsageJob> UsageJobs => Set<UsageJob>();
    public DbSet<UsageScope> UsageScopes => Set<UsageScope>();
    public DbSet<Rpt.Portal.Budgets.Budget> Budgets => Set<Rpt.Portal.Budgets.Budget>();
    public DbSet<LedgerEntry> LedgerEntries => Set<LedgerEntry>();
    public DbSet<CreditReservation> Reservations => Set<CreditReservation>();
    public DbSet<Operations.OperatorAuditRecord> OperatorAudit => Set<Operations.OperatorAuditRecord>();
    public DbSet<Operations.PriceNotice> PriceNotices => Set<Operations.PriceNotice>();
    public DbSet<FlushRun> FlushRuns => Set<FlushRun>();
    public DbSet<FlushLag> FlushLags => Set<FlushLag>();
    public DbSet<LedgerPeriodSum> LedgerPeriodSums => Set<LedgerPeriodSum>();
    public DbSet<EntryJob> EntryJobs => Set<EntryJob>();
    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();
    public DbSet<Billing.StripeEventRecord> StripeEvents => Set<Billing.StripeEventRecord>();
    public DbSet<Billing.AutoTopUpSetting> AutoTopUps => Set<Billing.AutoTopUpSetting>();
    public DbSet<Billing.AutoTopUpAttempt> AutoTopUpAttempts => Set<Billing.AutoTopUpAttempt>();
    public DbSet<Billing.MeterReport> MeterReports => Set<Billing.MeterReport>();
    public DbSet<Billing.Marketplace.MarketplaceAccount> MarketplaceAccounts => Set<Billing.Marketplace.MarketplaceAccount>();
    public DbSet<Billing.Marketplace.MarketplaceRegistration> MarketplaceRegistrations => Set<Billing.Marketplace.MarketplaceRegistration>();
    public DbSet<Billing.Marketplace.MarketplaceReport> MarketplaceReports => Set<Billing.Marketplace.MarketplaceReport>();
    public DbSet<Billing.Marketplace.MarketplaceNotification> MarketplaceNotifications => Set<Billing.Marketplace.MarketplaceNotification>();
    public DbSet<Alerts.AlertRule> AlertRules => Set<Alerts.AlertRule>();
    public DbSet<Alerts.AlertFiring> AlertFirings => Set<Alerts.AlertFiring>();
    public DbSet<Alerts.AlertDelivery> AlertDeliveries => Set<Alerts.AlertDelivery>();
    public DbSet<Alerts.AlertMail> AlertMails => Set<Alerts.AlertMail>();
    public DbSet<Alerts.AlertSeen> AlertSeen => Set<Alerts.AlertSeen>();
    public DbSet<Alerts.WebhookEndpoint> WebhookEndpoints => Set<Alerts.WebhookEndpoint>();
    public DbSet<Alerts.WebhookMessage> WebhookMessages => Set<Alerts.WebhookMessage>();
    public DbSet<Alerts.WebhookAttempt> WebhookAttempts => Set<Alerts.WebhookAttempt>();

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.ApplyConfigurationsFromAssembly(typeof(ApplicationDbContext).Assembly);
        KeepSchemaNames(builder);
    }

    /// <summary>
    /// Tables and columns of our own are snake_case by convention (UseSnakeCaseNamingConvention). Two things
    /// keep the names the schema already has, so that the convention changes no table: Identity's tables keep
    /// the template's columns (AspNetUsers.UserName), and keys, foreign keys and indexes keep EF's default
    /// names (PK_tenants, IX_api_keys_hash) unless a configuration names them.
    /// </summary>
    private static void KeepSchemaNames(ModelBuilder builder)
    {
        foreach (var entity in builder.Model.GetEntityTypes())
        {
            if (entity.IsMappedToJson()) continue;
            if (entity.GetTableName()?.StartsWith("AspNet", StringComparison.Ordinal) == true)
            {
                foreach (var property in entity.GetProperties()) property.SetColumnName(property.Name);
            }
            foreach (var key in entity.GetKeys())
            {
                if (((IConventionKey)key).GetNameConfigurationSource() != ConfigurationSource.Explicit) key.SetName(key.GetDefaultName());
            }
            foreach (var fk in entity.GetForeignKeys())
            {
                if (((IConventionForeignKey)fk).GetConstraintNameConfigurationSource() != ConfigurationSource.Explicit) fk.SetConstraintName(fk.GetDefaultName());
            }
            foreach (var index in entity.GetIndexes())
            {
                if (((IConventionIndex)index).GetDatabaseNameConfigurationSource() != ConfigurationSource.Explicit) index.SetDatabaseName(index.GetDefaultDatabaseName());
            }
        }
    }

    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        // Instants are stored as Unix milliseconds: they sort and compare correctly in SQL on every
        // provider, and the hot ingestion path writes the same integers without EF.
        configurationBuilder.Properties<DateTimeOffset>().HaveConversion<UnixMillisecondsConverter>();
    }

    private sealed class UnixMillisecondsConverter() : ValueConverter<DateTimeOffset, long>(
        v => v.ToUnixTimeMilliseconds(),
        v => DateTimeOffset.FromUnixTimeMilliseconds(v));
}
