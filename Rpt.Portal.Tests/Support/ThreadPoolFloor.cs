using System.Runtime.CompilerServices;

namespace Rpt.Portal.Tests.Support;

/// <summary>
/// Raises the thread pool's minimum for this test process. Component tests wait for the page with bUnit's synchronous
/// <c>WaitForAssertion</c>, which blocks a pool thread, while the pages' reads (the balance, the usage rollups) run
/// synchronously on other pool threads; tests run in parallel. On two cores the pool starts with two threads and adds
/// about one a second, so a burst of blocked waits left the renderer's dispatcher without a thread for the whole wait
/// (a clean-clone CI's PostgreSQL pass: "the wait condition was never checked"). The portal's own process is not
/// changed by this.
/// </summary>
internal static class ThreadPoolFloor
{
    [ModuleInitializer]
    internal static void Raise()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), io);
    }
}
