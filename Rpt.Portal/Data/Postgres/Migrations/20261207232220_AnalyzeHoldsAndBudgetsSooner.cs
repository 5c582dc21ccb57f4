using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class AnalyzeHoldsAndBudgetsSooner : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AlterTable(
                name: "credit_reservations")
                .Annotation("Npgsql:StorageParameter:autovacuum_analyze_scale_factor", 0)
                .Annotation("Npgsql:StorageParameter:autovacuum_analyze_threshold", 200);

            migrationBuilder.AlterTable(
                name: "budgets")
                .Annotation("Npgsql:StorageParameter:autovacuum_analyze_scale_factor", 0)
                .Annotation("Npgsql:StorageParameter:autovacuum_analyze_threshold", 50);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AlterTable(
                name: "credit_reservations")
                .OldAnnotation("Npgsql:StorageParameter:autovacuum_analyze_scale_factor", 0)
                .OldAnnotation("Npgsql:StorageParameter:autovacuum_analyze_threshold", 200);

            migrationBuilder.AlterTable(
                name: "budgets")
                .OldAnnotation("Npgsql:StorageParameter:autovacuum_analyze_scale_factor", 0)
                .OldAnnotation("Npgsql:StorageParameter:autovacuum_analyze_threshold", 50);
        }
    }
}
