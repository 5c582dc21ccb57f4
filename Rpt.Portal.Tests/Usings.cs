global using Xunit;
global using Rpt.Portal.Tests.Support;
