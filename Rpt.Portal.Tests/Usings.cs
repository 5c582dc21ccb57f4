global using Xunit;
global using Rpt.Portal.Tests.Support;
global using Rpt.Portal.Tenants;
global using Rpt.Portal.Data;
