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
    public void AFeaturesCode_DoesNotDependOnThePortalShell_OnlyItsPagesDo(string feature)
    {
        var result = Types.InAssembly(typeof(Program).Assembly)
            .That().ResideInNamespace(feature).And().DoNotResideInNamespace(feature + ".Pages")
            .ShouldNot().HaveDependencyOn("Rpt.Portal.Components")
            .GetResult();
        Assert.True(result.IsSuccessful, $"{feature} depends on Rpt.Portal.Components: {string.Join(", ", result.FailingTypeNames ?? [])}");
    }
}
