using NetArchTest.Rules;

namespace Rpt.Portal.Tests;

/// <summary>
/// Dependencies point one way: the features (and their persistence) never reach into the portal's shell
/// (<c>Rpt.Portal.Components</c>: layout, shared widgets, the account pages); only pages do. Roles, account codes and
/// mail, which every feature needs, live in features of their own.
/// </summary>
[Trait("Kind", "Unit")]
public class DependencyTests
{
    [Theory]
    [InlineData("Rpt.Portal.Ledger")]
    [InlineData("Rpt.Portal.Metering")]
    [InlineData("Rpt.Portal.Plans")]
    [InlineData("Rpt.Portal.Billing")]
    [InlineData("Rpt.Portal.Alerts")]
    [InlineData("Rpt.Portal.Tenants")]
    [InlineData("Rpt.Portal.Mail")]
    [InlineData("Rpt.Portal.Data")]
    [InlineData("Rpt.Portal.Observability")]
    public void AFeaturesCode_DoesNotDependOnThePortalShell_OnlyItsPagesDo(string feature)
    {
        var result = Types.InAssembly(typeof(Program).Assembly)
            .That().ResideInNamespace(feature).And().DoNotResideInNamespace(feature + ".Pages")
            .ShouldNot().HaveDependencyOn("Rpt.Portal.Components")
            .GetResult();
        Assert.True(result.IsSuccessful, $"{feature} depends on Rpt.Portal.Components: {string.Join(", ", result.FailingTypeNames ?? [])}");
    }

    /// <summary>
    /// The storage boundary: only the engines' own folders (Data/Sqlite, Data/Postgres and their migrations) name an
    /// engine's client library; every feature speaks to <see cref="Rpt.Portal.Data.PortalDatabase"/>, EF Core and the
    /// interfaces it owns (<see cref="Rpt.Portal.Metering.IUsageStore"/>).
    /// </summary>
    [Theory]
    [InlineData("Microsoft.Data.Sqlite")]
    [InlineData("SQLitePCL")]
    [InlineData("Npgsql")]
    public void NoTypeOutsideTheEngineFolders_NamesAnEnginesClientLibrary(string library)
    {
        var result = Types.InAssembly(typeof(Program).Assembly)
            .That().DoNotResideInNamespace("Rpt.Portal.Data.Sqlite")
            .And().DoNotResideInNamespace("Rpt.Portal.Data.Postgres")
            .And().DoNotResideInNamespace("Rpt.Portal.Data.Migrations")
            .ShouldNot().HaveDependencyOn(library)
            .GetResult();
        Assert.True(result.IsSuccessful, $"outside the engine folders, these name {library}: {string.Join(", ", result.FailingTypeNames ?? [])}");
    }

    /// <summary>The engines depend on the features' interfaces, never the other way: no feature names an engine's folder.</summary>
    [Theory]
    [InlineData("Rpt.Portal.Ledger")]
    [InlineData("Rpt.Portal.Metering")]
    [InlineData("Rpt.Portal.Plans")]
    [InlineData("Rpt.Portal.Billing")]
    [InlineData("Rpt.Portal.Alerts")]
    [InlineData("Rpt.Portal.Tenants")]
    [InlineData("Rpt.Portal.Api")]
    public void NoFeature_NamesAStorageEngine(string feature)
    {
        var result = Types.InAssembly(typeof(Program).Assembly)
            .That().ResideInNamespace(feature)
            .ShouldNot().HaveDependencyOnAny("Rpt.Portal.Data.Sqlite", "Rpt.Portal.Data.Postgres")
            .GetResult();
        Assert.True(result.IsSuccessful, $"{feature} names a storage engine: {string.Join(", ", result.FailingTypeNames ?? [])}");
    }

    /// <summary>
    /// The features form layers: the plan catalog (what a plan allows), then tenants (the account, its members, its
    /// period, its changes), then metering (usage and its price), then the ledger (credits, which consume metered
    /// usage, and the quota check on them), then alerts, then billing (subscriptions, plan changes, payments), which
    /// uses them all. Mail is a service below every feature, and observability (metrics) below mail. A lower layer never names a higher one; pages may use any.
    /// </summary>
    [Theory]
    [InlineData("Rpt.Portal.Plans", "Rpt.Portal.Tenants")]
    [InlineData("Rpt.Portal.Plans", "Rpt.Portal.Metering")]
    [InlineData("Rpt.Portal.Plans", "Rpt.Portal.Ledger")]
    [InlineData("Rpt.Portal.Plans", "Rpt.Portal.Alerts")]
    [InlineData("Rpt.Portal.Plans", "Rpt.Portal.Billing")]
    [InlineData("Rpt.Portal.Observability", "Rpt.Portal.Mail")]
    [InlineData("Rpt.Portal.Observability", "Rpt.Portal.Tenants")]
    [InlineData("Rpt.Portal.Observability", "Rpt.Portal.Metering")]
    [InlineData("Rpt.Portal.Observability", "Rpt.Portal.Ledger")]
    [InlineData("Rpt.Portal.Observability", "Rpt.Portal.Alerts")]
    [InlineData("Rpt.Portal.Observability", "Rpt.Portal.Billing")]
    [InlineData("Rpt.Portal.Observability", "Rpt.Portal.Data")]
    [InlineData("Rpt.Portal.Mail", "Rpt.Portal.Tenants")]
    [InlineData("Rpt.Portal.Mail", "Rpt.Portal.Plans")]
    [InlineData("Rpt.Portal.Mail", "Rpt.Portal.Ledger")]
    [InlineData("Rpt.Portal.Tenants", "Rpt.Portal.Metering")]
    [InlineData("Rpt.Portal.Tenants", "Rpt.Portal.Ledger")]
    [InlineData("Rpt.Portal.Tenants", "Rpt.Portal.Alerts")]
    [InlineData("Rpt.Portal.Tenants", "Rpt.Portal.Billing")]
    [InlineData("Rpt.Portal.Metering", "Rpt.Portal.Ledger")]
    [InlineData("Rpt.Portal.Metering", "Rpt.Portal.Plans")]
    [InlineData("Rpt.Portal.Metering", "Rpt.Portal.Alerts")]
    [InlineData("Rpt.Portal.Metering", "Rpt.Portal.Billing")]
    [InlineData("Rpt.Portal.Ledger", "Rpt.Portal.Alerts")]
    [InlineData("Rpt.Portal.Ledger", "Rpt.Portal.Billing")]
    [InlineData("Rpt.Portal.Alerts", "Rpt.Portal.Billing")]
    public void ALowerFeature_DoesNotDependOnAHigherOne(string lower, string higher)
    {
        var result = Types.InAssembly(typeof(Program).Assembly)
            .That().ResideInNamespace(lower).And().DoNotResideInNamespace(lower + ".Pages")
            .ShouldNot().HaveDependencyOn(higher)
            .GetResult();
        Assert.True(result.IsSuccessful, $"{lower} depends on {higher}: {string.Join(", ", result.FailingTypeNames ?? [])}");
    }
}
